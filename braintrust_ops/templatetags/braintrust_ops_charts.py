"""``{% braintrust_ops_nights %}``: the last 30 nights as pictures, on the app's admin page.

Imported by every template engine of a host that loads app template tags (Sefaria's does), so importing it
touches nothing: the database is read when the tag renders.
"""

from django import template
from django.utils.safestring import mark_safe

from braintrust_ops.charts import Series, bar_chart, line_chart
from braintrust_ops.services.nights import NIGHTS, nights_summary

register = template.Library()


@register.simple_tag
def braintrust_ops_nights() -> str:
    nights = nights_summary()
    if nights.empty:
        return mark_safe(f"<p>No tag_logs run in the last {NIGHTS} nights yet.</p>")
    labels = [day.strftime("%m-%d") for day in nights.days]
    charts = [
        bar_chart("Logs labelled per night", labels, nights.labelled),
        line_chart("Labels per tag per night", labels, [Series(tag, values) for tag, values in nights.per_tag.items()]),
        bar_chart("Failed labellings per night (the logs' own, Anthropic's, the setup's)", labels, nights.failures),
        bar_chart("Cost per night (USD, the tokens billed)", labels, nights.cost_usd, unit=" $"),
    ]
    if nights.precision:
        charts += [
            line_chart(
                "Claude's precision per tag, against people's labels",
                labels,
                [Series(tag, values) for tag, values in nights.precision.items()],
                top=1.0,
            ),
            line_chart(
                "Claude's recall per tag, against people's labels",
                labels,
                [Series(tag, values) for tag, values in nights.recall.items()],
                top=1.0,
            ),
        ]
    # Every text in the charts is escaped by braintrust_ops.charts; the markup is the module's own.
    return mark_safe(  # noqa: S308
        f'<div class="module braintrust-ops-nights"><h2>The last {NIGHTS} nights</h2>'
        + "".join(f'<div style="margin: 8px">{chart}</div>' for chart in charts)
        + "</div>"
    )
