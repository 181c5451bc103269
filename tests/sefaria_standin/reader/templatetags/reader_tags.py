"""The host's template tags load its models, which connect to MongoDB when imported (Sefaria's
``reader/templatetags/sefaria_tags.py`` imports ``sefaria.sheets``): every Django template engine imports
every installed app's tag libraries when it starts, so any template rendered in the host's process needs
MongoDB."""

import sefaria.system.database  # noqa: F401
from django import template

register = template.Library()
