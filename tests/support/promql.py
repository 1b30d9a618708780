"""The metric names a PromQL expression reads, and those a /metrics page exports: enough PromQL to check a
dashboard's and alert rules' queries against what rooms serves (not a parser of the whole language)."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")
_OPERATORS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
# The samples each type of family exposes, by suffix.
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "info": ("_info",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "untyped": ("",),
}


def metric_names(expression: str) -> set[str]:
    """The metrics ``expression`` selects (Grafana's ``label_values(metric, label)`` too)."""
    variable = _LABEL_VALUES.match(expression)
    if variable:
        return {variable[1]}
    text = _STRING.sub('""', expression)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for found in _NAME.finditer(text):
        # A name followed by "(" is a function or an aggregation; a name in ``_OPERATORS`` is a keyword.
        if text[found.end() :].lstrip().startswith("(") or found[0].lower() in _OPERATORS:
            continue
        names.add(found[0])
    return names


def exported_names(exposition: str) -> set[str]:
    """Every sample name a /metrics page can show, from each family's type: a histogram's ``_bucket``,
    ``_sum`` and ``_count``, a counter's ``_total``, even while a labelled family has no sample yet."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names
