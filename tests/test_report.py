"""gatys.report: escaping strict templates, heatmaps, CSV/JSON, inlined images, contact sheets."""
from __future__ import annotations

import base64
import csv
import io
import json
import re

import jinja2
import numpy as np
import pytest
from PIL import Image

from browser import external_references, needs_chromium, screenshot
from gatys import report
from gatys.errors import GatysError

MALICIOUS = ["<b>x</b>.png", '"><script>alert(1)</script>']

PAGE = """{% extends "base.html" %}
{% from "macros.html" import heatmap_table, data_table, figure, settings %}
{% block title %}Study of {{ names[0] }}{% endblock %}
{% block body %}
<h2>{{ names[1] }}</h2>
{{ heatmap_table(names, ["a", names[1]], matrix, spread=spread, corner=names[0]) }}
{{ data_table(["name", "value"], [[names[0], 0.123456], [names[1], None]]) }}
<div class="figures">
{% for name in names %}{{ figure(src, name, href=name|urlpath) }}{% endfor %}
</div>
{{ settings({"content": names[0], "losses": names}) }}
{% endblock %}
"""


def render_page(**context) -> str:
    defaults = dict(names=MALICIOUS, matrix=[[0.0, 1.0], [None, 0.5]], spread=None,
                    src=report.image_data_uri(Image.new("RGB", (8, 8), (255, 0, 255))))
    return report.environment().from_string(PAGE).render(**{**defaults, **context})


def solid(colour, size=(20, 20)) -> Image.Image:
    return Image.new("RGB", size, colour)


# ---------------------------------------------------------------------------- templates

def test_user_strings_are_escaped_everywhere():
    page = render_page()
    for raw in MALICIOUS:
        assert raw not in page
    assert "<script" not in page
    assert "&lt;b&gt;x&lt;/b&gt;.png" in page
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # In a URL the name is percent-encoded, so it still names that file and cannot end the attribute.
    assert 'href="%3Cb%3Ex%3C/b%3E.png"' in page
    assert 'href="%22%3E%3Cscript%3Ealert%281%29%3C/script%3E"' in page


def test_url_path_keeps_a_scheme_like_name_relative():
    assert report.url_path("javascript:alert(1).png") == "javascript%3Aalert%281%29.png"
    assert report.url_path("jobs/a b#1?.png") == "jobs/a%20b%231%3F.png"


def test_a_missing_variable_is_an_error():
    with pytest.raises(jinja2.UndefinedError):
        report.environment().from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError):
        render_page(names=[])  # names[0] does not exist


def test_base_page_forbids_external_requests():
    page = report.render("base.html")
    assert page.startswith("<!DOCTYPE html>")
    assert ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "img-src 'self' data:; style-src 'unsafe-inline'\">") in page
    assert "<title>gatys report</title>" in page


def test_external_references():
    page = render_page()
    assert external_references(page) == []
    planted = page.replace("</main>", '<img src="https://example.com/x.png">'
                           '<a href="//cdn.example.com/y">y</a>'
                           '<div style="background: url(\'http://example.org/z.png\')"></div>'
                           '<img src="thumbs/ok.png"><a href="#top">top</a></main>')
    assert external_references(planted) == ["https://example.com/x.png", "//cdn.example.com/y",
                                            "http://example.org/z.png"]
    assert external_references("<style>@import 'https://a.example/s.css';</style>") \
        == ["https://a.example/s.css"]


def test_heatmap_colours_cells_and_leaves_none_empty():
    page = render_page(matrix=[[0.0, 1.0], [None, 0.5]], spread=[["± 1", 0.25], [None, "n=2"]])
    colours = re.findall(r'<td style="background:(#[0-9a-f]{6});color:#[0-9a-f]{3}">', page)
    assert len(colours) == 3 and len(set(colours)) == 3
    assert '<td class="empty"></td>' in page
    assert '<span class="spread">± 0.25</span>' in page
    assert '<span class="spread">n=2</span>' in page


def test_heatmap_scale():
    cells = report.heatmap_cells([[1.0, 3.0], [2.0, float("nan")]])
    assert (cells["low"], cells["high"]) == (1.0, 3.0)
    assert cells["rows"][0][0]["style"] == report.heat_style(0.0)
    assert cells["rows"][0][1]["style"] == report.heat_style(1.0)
    assert cells["rows"][1][1]["empty"] and cells["rows"][1][1]["text"] == "nan"
    reversed_cells = report.heatmap_cells([[1.0, 3.0]], reverse=True)
    assert reversed_cells["rows"][0][0]["style"] == report.heat_style(1.0)
    assert report.heat_colour(0.0) != report.heat_colour(1.0)
    assert report.heat_colour(-5) == report.heat_colour(0.0)  # clipped
    assert report.heat_style(None) == "" and report.heat_style(float("nan")) == ""


@pytest.mark.parametrize("value, text", [(0.123456, "0.123"), (12345.678, "1.23e+04"), (7, "7"),
                                         (np.float32(0.5), "0.5"), (np.int64(3), "3"), (None, "–"),
                                         (float("nan"), "nan"), (True, "True")])
def test_number(value, text):
    assert report.number(value) == text


# ---------------------------------------------------------------------------- CSV and JSON

def test_csv_round_trip(tmp_path):
    rows = [["gram", 0.1234567890123, 3], [MALICIOUS[1], None, np.float64(2.5)]]
    path = report.write_csv(tmp_path / "out" / "table.csv", ["loss", "value", "n"], rows)
    with open(path, newline="", encoding="utf-8") as handle:
        read = list(csv.reader(handle))
    assert read == [["loss", "value", "n"], ["gram", "0.1234567890123", "3"], [MALICIOUS[1], "", "2.5"]]
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        report.write_csv(tmp_path / "bad.csv", ["a", "b", "c"], [[1, 2]])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["table.csv"]  # no temporary left


def test_json_round_trip(tmp_path):
    data = {"name": "café <b>", "values": np.array([[1.0, 2.0]]), "n": np.int32(4),
            "missing": float("nan"), "path": tmp_path, "nested": ({"x": np.float32(0.25)},)}
    path = report.write_json(tmp_path / "study.json", data)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "name": "café <b>", "values": [[1.0, 2.0]], "n": 4, "missing": None, "path": str(tmp_path),
        "nested": [{"x": 0.25}]}


def test_write_html(tmp_path):
    path = report.write_html(tmp_path / "index.html", "base.html")
    assert path.read_text(encoding="utf-8") == report.render("base.html")


# ---------------------------------------------------------------------------- images

def test_image_data_uri_round_trip(tmp_path):
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    uri = report.image_data_uri(picture)
    assert uri.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert decoded.format == "PNG" and decoded.size == (50, 30)
    assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(picture))

    picture.save(tmp_path / "in.jpg")
    shrunk = report.image_data_uri(tmp_path / "in.jpg", max_side=10)
    assert Image.open(io.BytesIO(base64.b64decode(shrunk.split(",", 1)[1]))).size == (10, 6)
    assert report.image_data_uri(picture, max_side=100) == uri  # never enlarged


def test_thumbnail(tmp_path):
    rgba = Image.new("RGBA", (120, 60), (255, 0, 0, 0))  # transparent: white in the thumbnail
    rgba.save(tmp_path / "source.png")
    path = report.thumbnail(tmp_path / "source.png", tmp_path / "thumbs" / "a.png", max_side=40)
    with Image.open(path) as thumb:
        assert thumb.format == "PNG" and thumb.size == (40, 20)
        assert thumb.convert("RGB").getpixel((20, 10)) == (255, 255, 255)
    with pytest.raises(GatysError, match="no such file"):
        report.thumbnail(tmp_path / "absent.png", tmp_path / "t.png", 40)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(GatysError, match="bad.png"):
        report.image_data_uri(tmp_path / "bad.png")


def grid(rows=2, columns=3, headers=True, cell=40, **options):
    cells = [[solid((10 * i, 20 * j, 200)) for j in range(columns)] for i in range(rows)]
    if headers:
        options.setdefault("row_headers", [solid((0, 200, 0))] * rows)
        options.setdefault("column_headers", [solid((200, 200, 0))] * columns)
    return report.labelled_grid(cells, row_labels=[f"row {i}" for i in range(rows)],
                                column_labels=[f"column {j}" for j in range(columns)], cell=cell,
                                **options)


def test_grid_size():
    cell, margin, gap = 40, report.MARGIN, report.GAP
    sheet = grid()
    assert sheet.mode == "RGB"
    # label column, row headers, three cells
    assert sheet.width == 2 * margin + cell + gap + (cell + gap) + 3 * cell + 2 * gap
    assert grid(columns=4).width - sheet.width == cell + gap
    assert grid(rows=3).height - sheet.height == cell + gap
    plain = grid(headers=False)
    assert sheet.width - plain.width == cell + gap  # the row headers' column
    assert sheet.height - plain.height == cell  # the column headers' row
    assert grid(title="A study").height > sheet.height


def test_grid_places_cells_headers_and_placeholders():
    cell = 40
    magenta, cyan, orange = (255, 0, 255), (0, 255, 255), (255, 128, 0)
    cells = [[solid((0, 0, 255)), None, "failed"],
             [solid((0, 0, 255)), solid((0, 0, 255)), solid(magenta, size=(30, 60))]]
    sheet = report.labelled_grid(cells, row_labels=["a", "b"], column_labels=["x", "y", "z"],
                                 row_headers=[solid(orange), None],
                                 column_headers=[solid(cyan), "missing", solid(cyan)], cell=cell)
    pixels = np.asarray(sheet)

    def box(colour):
        ys, xs = np.nonzero(np.all(pixels == colour, axis=-1))
        return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1

    # The tall magenta image, in row 1 column 2, fitted to the cell's height and centred in it.
    left, top, right, bottom = box(magenta)
    assert (right - left, bottom - top) == (20, 40)
    cells_left = report.MARGIN + 2 * (cell + report.GAP)
    assert left == cells_left + 2 * (cell + report.GAP) + 10
    # The row header (orange) is left of the cells and level with row 0; column headers above.
    orange_box, cyan_box = box(orange), box(cyan)
    assert orange_box[2] < cells_left and orange_box[2] - orange_box[0] == cell
    assert cyan_box[3] < orange_box[1] and cyan_box[0] == cells_left
    assert bottom - top == cell and top == orange_box[1] + cell + report.GAP
    # None and a text are grey placeholders; a text placeholder has dark ink on it.
    grey = np.all(pixels == report.PLACEHOLDER, axis=-1)
    blank = pixels[orange_box[1]:orange_box[3], cells_left + cell + report.GAP:][:, :cell]
    assert np.all(blank == report.PLACEHOLDER)
    failed = pixels[orange_box[1]:orange_box[3], cells_left + 2 * (cell + report.GAP):][:, :cell]
    assert np.mean(np.all(failed == report.PLACEHOLDER, axis=-1)) > 0.5
    assert failed.min() < 100
    assert grey.sum() > 3 * cell * cell * 0.5  # None, "failed", "missing" and the None row header


def test_grid_labels_of_any_length_and_alphabet():
    long = "mmd-gaussian:sigma=1+2,layers=relu1_1+relu2_1+relu3_1 " * 4
    sheet = report.labelled_grid([[solid((0, 0, 0)), None]], row_labels=[long],
                                 column_labels=["café_日本語_<b>.png", long], title=long, cell=48)
    assert sheet.width == 2 * report.MARGIN + 48 + report.GAP + 2 * 48 + report.GAP
    assert np.asarray(sheet).min() < 100  # some text was drawn


def test_grid_checks_its_shape():
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 column labels"):
        report.labelled_grid([[None]], row_labels=["a"], column_labels=["x", "y"])
    with pytest.raises(ValueError, match="1 column headers for 2 columns"):
        report.labelled_grid([[None, None]], row_labels=["a"], column_labels=["x", "y"],
                             column_headers=[None])


# ---------------------------------------------------------------------------- in a browser

@needs_chromium
def test_page_renders_in_headless_chromium(tmp_path):
    magenta, cyan = (255, 0, 255), (0, 255, 255)
    report.thumbnail(solid(cyan, (120, 80)), tmp_path / "thumbs" / "<b>x</b>.png", 120)
    page = report.environment().from_string(
        """{% extends "base.html" %}
{% from "macros.html" import heatmap_table, figure %}
{% block title %}Report of {{ name }}{% endblock %}
{% block body %}
<div class="figures">
{{ figure(inline, "inlined " ~ name) }}
{{ figure("thumbs/" ~ (name ~ ".png")|urlpath, "beside: " ~ name ~ ".png") }}
</div>
{{ heatmap_table(["gram", "mmd-linear", name], ["gram", "mmd-linear", "moments"], matrix,
                 spread=[["± 0.01", None, None], [None, None, None], [None, None, "n=3"]]) }}
{% endblock %}""").render(name="<b>x</b>", inline=report.image_data_uri(solid(magenta, (160, 100))),
                          matrix=[[0.0, 0.4, 0.9], [0.4, 0.0, None], [0.9, 0.7, 0.1]])
    assert external_references(page) == []
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    png = screenshot(html, tmp_path / "shot.png", width=1000, height=700)
    with Image.open(png) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.shape == (700, 1000, 3)
    assert pixels.std() > 0
    # Both images loaded: the inlined one (data:) and the one beside the page ('self').
    assert np.all(pixels == magenta, axis=-1).sum() > 100 * 60
    assert np.all(pixels == cyan, axis=-1).sum() > 80 * 50
    # The heatmap's darkest colour is on the page.
    dark = tuple(int(report.heat_colour(0.0)[k:k + 2], 16) for k in (1, 3, 5))
    assert np.all(np.abs(pixels.astype(int) - dark) <= 2, axis=-1).sum() > 100
