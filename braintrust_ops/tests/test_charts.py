"""charts: SVG that parses, holds every figure as text, and escapes whatever a name holds."""

from xml.etree import ElementTree

from hypothesis import example, given
from hypothesis import strategies as st

from braintrust_ops.charts import Series, _nice_top, bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_a_gap_breaks_the_line_and_each_point_says_its_figure():
    chart = ElementTree.fromstring(line_chart("t", ["a", "b", "c", "d"], [Series("x", [0.5, None, 0.25, 0.75])], top=1))
    assert len(list(chart.iter(f"{SVG}polyline"))) == 1  # c-d; a stands alone
    assert [title.text for title in chart.iter(f"{SVG}title")][1:] == ["x, a: 0.50", "x, c: 0.25", "x, d: 0.75"]


def test_the_axis_top_is_a_round_number_above_the_largest_value():
    assert [_nice_top(value) for value in (0, 0.042, 1, 3, 42, 99, 100, 101)] == [1, 0.05, 1, 5, 50, 100, 100, 200]


@given(st.floats(min_value=0, max_value=1e300))
@example(5e-324)
def test_any_value_gets_a_top_at_or_above_it_or_the_top_of_nothing_to_show(value):
    # 5e-324 is subnormal: 10 ** floor(log10) underflows to 0 (Hypothesis found it), so no factor fitted.
    top = _nice_top(value)
    assert top >= value and (top == 1.0 or value > 0)


@given(
    names=st.lists(st.text(), min_size=1, max_size=4),
    values=st.lists(st.none() | st.floats(0, 1e9), min_size=1, max_size=8),
)
def test_any_names_and_values_give_svg_that_parses_and_shows_the_names_as_text(names, values):
    labels = [str(index) for index in range(len(values))]
    names = [name for name in names if name.isprintable()] or ["x"]
    svg = line_chart("title <&>", labels, [Series(name, values) for name in names])
    chart = ElementTree.fromstring(svg)
    assert chart.find(f"{SVG}title").text == "title <&>"
    legend = [element.text or "" for element in chart.iter(f"{SVG}text")]
    assert all(name in legend for name in names)
    bars = ElementTree.fromstring(bar_chart("b", labels, [value or 0.0 for value in values]))
    assert len(list(bars.iter(f"{SVG}rect"))) == len(values)
