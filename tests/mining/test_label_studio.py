"""Label Studio round trip: tasks with a spectrogram PNG each, labelling config, annotation import
(latest submitted annotation wins) and refusals of malformed exports that name the file and the field."""

from __future__ import annotations

import copy
import json
import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import polars as pl
import pytest
from label_studio_testkit import (
    EXPECTED_LABELS,
    LS_CONFIGS,
    completed_export,
    curated_batch,
    picks_for,
    result,
)

from mining.label_studio import LabelStudioError, export_tasks, import_annotations
from mining.labels import LABEL_SCHEMA
from runtime.labels import CLASSES

DATA_FIELDS = {"image", "window_id", "batch_id", "strategy", "device_id", "t_end_s"}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(curated dir, picks, out dir, tasks) of one export of 6 picks."""
    root = tmp_path_factory.mktemp("ls")
    curated = curated_batch(root)
    picks = picks_for(curated, 6)
    tasks_path = export_tasks(picks, curated, root / "tasks", *LS_CONFIGS)
    return curated, picks, root / "tasks", json.loads(tasks_path.read_text())


def test_export_writes_one_task_and_png_per_pick_with_the_documented_fields(exported):
    curated, picks, out, tasks = exported
    table = pl.read_parquet(curated / "windows.parquet")
    assert [t["id"] for t in tasks] == [1, 2, 3, 4, 5, 6]
    assert [t["data"]["window_id"] for t in tasks] == picks["window_id"].to_list()  # pick order kept
    pngs = sorted((out / "images").glob("*.png"))
    assert len(pngs) == len(picks)
    contents = set()
    for task, pick in zip(tasks, picks.iter_rows(named=True), strict=True):
        data = task["data"]
        assert set(data) == DATA_FIELDS
        window = table.row(by_predicate=pl.col("window_id") == data["window_id"], named=True)
        assert (data["batch_id"], data["device_id"]) == (window["batch_id"], window["device_id"])
        assert data["t_end_s"] == pytest.approx(window["t_end_s"])
        assert data["strategy"] == pick["strategy"]
        png = (out / data["image"]).read_bytes()  # a path relative to the export folder
        assert png_size(png) == (96, 64)  # mining.label_studio.image_px
        contents.add(png)
    assert len(contents) == len(tasks)  # each image shows its own window


def test_label_config_offers_one_presence_choice_over_the_classes(exported):
    root = ET.fromstring((exported[2] / "label_config.xml").read_text())
    image = root.find("Image")
    choices = root.findall("Choices")
    assert image is not None and image.get("value") == "$image"
    assert len(choices) == 1 and choices[0].get("name") == "presence"
    assert choices[0].get("toName") == image.get("name") and choices[0].get("choice") == "single"
    assert [c.get("value") for c in choices[0].findall("Choice")] == list(CLASSES)


def test_export_refuses_picks_outside_the_batch_or_repeated(tmp_path, exported):
    curated, picks, _, _ = exported
    ghost = pl.DataFrame({"window_id": ["nope:7"], "strategy": ["random"]})
    with pytest.raises(ValueError, match=r"windows\.parquet: picks not in the batch.*nope:7"):
        export_tasks(
            pl.concat([picks.select("window_id", "strategy"), ghost]), curated, tmp_path, *LS_CONFIGS
        )
    with pytest.raises(ValueError, match="window_id repeated"):
        export_tasks(pl.concat([picks, picks.head(1)]), curated, tmp_path, *LS_CONFIGS)
    assert not (tmp_path / "tasks.json").exists()


def test_export_without_strategy_column(tmp_path, exported):
    curated, picks, _, _ = exported
    tasks = json.loads(
        export_tasks(picks.select("window_id").head(2), curated, tmp_path, *LS_CONFIGS).read_text()
    )
    assert [t["data"]["strategy"] for t in tasks] == [None, None]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(completed_export(tasks)))
    assert import_annotations(export)["strategy"].to_list() == ["label_studio", "label_studio"]


def test_import_round_trips_completed_annotations(tmp_path, exported):
    tasks = exported[3]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(completed_export(tasks)))
    labels = import_annotations(export, confidence=0.8)
    assert labels.schema == pl.Schema(LABEL_SCHEMA)
    expected = [
        (t["data"]["window_id"], t["data"]["batch_id"], lab, "label_studio", 0.8, t["data"]["strategy"])
        for t, lab in zip(tasks, EXPECTED_LABELS + [0] * len(tasks), strict=False)
        if lab is not None
    ]
    assert labels.rows() == expected
    assert labels["label"].to_list() == [2, 1, 0, 0]
    with pytest.raises(ValueError, match=r"confidence must be in \[0, 1\]"):
        import_annotations(export, confidence=1.5)


def _valid_export(tasks: list[dict]) -> list[dict]:
    return completed_export(tasks)


def _set(path: list, value):
    def mutate(doc):
        obj = doc
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
        return doc

    return mutate


def _delete(path: list):
    def mutate(doc):
        obj = doc
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
        return doc

    return mutate


MALFORMED = {
    "missing result": (
        _delete([0, "annotations", 0, "result"]),
        r"\[0\]\.annotations\[0\]: missing field 'result'",
    ),
    "empty result": (_set([0, "annotations", 0, "result"], []), r"\[0\]\.annotations\[0\]\.result: empty"),
    "unknown choice": (
        _set([0, "annotations", 0, "result", 0, "value", "choices"], ["person"]),
        r"\[0\]\.annotations\[0\]\.result\[0\]\.value\.choices: expected one of \['none', 'minor', 'major'\]",
    ),
    "two choices": (
        _set([0, "annotations", 0, "result", 0, "value", "choices"], ["none", "major"]),
        r"\[0\]\.annotations\[0\]\.result\[0\]\.value\.choices",
    ),
    "wrong from_name": (
        _set([1, "annotations", 1, "result", 0, "from_name"], "label"),
        r"\[1\]\.annotations\[1\]\.result\[0\]\.from_name: expected 'presence', got 'label'",
    ),
    "missing value": (
        _delete([0, "annotations", 0, "result", 0, "value"]),
        r"\[0\]\.annotations\[0\]\.result\[0\]: missing field 'value'",
    ),
    "contradicting results": (
        lambda d: d[0]["annotations"][0]["result"].append(result("none")) or d,
        r"\[0\]\.annotations\[0\]\.result\[1\]\.value\.choices: 'none' contradicts 'major'",
    ),
    "duplicate task": (
        lambda d: [*d, {**copy.deepcopy(d[0]), "id": 99}],
        r"\[6\]\.data\.window_id: duplicate task for '.+' \(first at \[0\]\)",
    ),
    "duplicate task id": (_set([1, "id"], 1), r"\[1\]\.id: duplicate task id 1 \(first at \[0\]\)"),
    "missing data": (_delete([2, "data"]), r"\[2\]: missing field 'data'"),
    "missing window_id": (_delete([0, "data", "window_id"]), r"\[0\]\.data: missing field 'window_id'"),
    "window_id not a string": (_set([0, "data", "window_id"], 7), r"\[0\]\.data\.window_id: expected str"),
    "annotations not a list": (
        _set([0, "annotations"], {"result": []}),
        r"\[0\]\.annotations: expected list",
    ),
    "not a list of tasks": (lambda d: {"tasks": d}, r": expected a list of tasks, got dict"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_exports_are_refused_naming_file_and_field(tmp_path, exported, case):
    mutate, pattern = MALFORMED[case]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(mutate(_valid_export(exported[3]))))
    with pytest.raises(LabelStudioError, match=re.escape(str(export)) + ".*" + pattern):
        import_annotations(export)


def test_not_json_is_refused(tmp_path):
    export = tmp_path / "export.json"
    export.write_text('[{"data": ')
    with pytest.raises(LabelStudioError, match=re.escape(str(export)) + ": not JSON"):
        import_annotations(export)


def test_cancelled_annotations_are_not_validated_nor_used(tmp_path, exported):
    doc = _valid_export(exported[3])
    doc[2]["annotations"][0]["result"] = [{"from_name": "other", "value": {}}]  # skipped: not checked
    export = tmp_path / "export.json"
    export.write_text(json.dumps(doc))
    labels = import_annotations(export)
    assert doc[2]["data"]["window_id"] not in labels["window_id"].to_list()
    assert np.array_equal(labels["label"].to_numpy(), [2, 1, 0, 0])
