"""What ``POST /v1/project_logs/{project_id}/insert`` does to a stored log, as Braintrust documents it.

From the OpenAPI spec (``InsertProjectLogsEvent``):
- ``_is_merge`` true: the event is deep-merged into the row with the same id (dicts merged key by key,
  anything else replaced); false or absent: the row is replaced whole. No row with that id: inserted as is.
- ``_merge_paths``: the merge does not descend below these paths; the value there is replaced.
- ``_array_delete``: ``[{"path": [...], "delete": [...]}]`` removes those values from the array at ``path``,
  "while preserving others".
- ``_object_delete`` true: the row is deleted; later fetches do not return it.
And from the braintrust SDK (0.47 and 0.48, ``util.py`` ``merge_dicts_with_paths``, ``_SET_UNION_FIELDS``):
a merged top-level ``tags`` array is united with the stored one as a set, unless ``["tags"]`` is a merge
path. So adding a tag never drops one a person put there.
"""

import copy
import json
from typing import Any

CONTROL_FIELDS = ("_is_merge", "_merge_paths", "_array_delete", "_object_delete", "_parent_id")
SET_UNION_FIELDS = frozenset({"tags"})


def merged(stored: dict, event: dict) -> dict:
    """The row after ``event`` (with ``_is_merge`` true) is merged into ``stored``; neither is changed."""
    paths = {tuple(path) for path in event.get("_merge_paths") or []}
    row = copy.deepcopy(stored)
    _merge_into(row, _fields(event), (), paths)
    for deletion in event.get("_array_delete") or []:
        _delete_values(row, deletion["path"], deletion["delete"])
    return row


def replaced(event: dict) -> dict:
    return copy.deepcopy(_fields(event))


def _fields(event: dict) -> dict:
    return {key: value for key, value in event.items() if key not in CONTROL_FIELDS}


def _merge_into(into: dict, source: dict, path: tuple[str, ...], paths: set[tuple[str, ...]]) -> None:
    for key, value in source.items():
        here = (*path, key)
        current = into.get(key)
        if not path and key in SET_UNION_FIELDS and here not in paths and isinstance(current, list):
            if isinstance(value, list):
                into[key] = _union(current, value)
                continue
        if isinstance(current, dict) and isinstance(value, dict) and here not in paths:
            _merge_into(current, value, here, paths)
        else:
            into[key] = copy.deepcopy(value)


def _union(first: list, second: list) -> list:
    seen: set[str] = set()
    united = []
    for item in first + second:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            united.append(item)
    return united


def _delete_values(row: dict, path: list[str], values: list[Any]) -> None:
    parent: Any = row
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or not path or not isinstance(parent.get(path[-1]), list):
        return
    unwanted = {json.dumps(value, sort_keys=True) for value in values}
    parent[path[-1]] = [item for item in parent[path[-1]] if json.dumps(item, sort_keys=True) not in unwanted]
