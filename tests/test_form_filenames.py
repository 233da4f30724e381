"""The filename of a form's file part, however the client quoted it: the stored name keeps its extension."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.uploads.receive import disposition_params

BOUNDARY = "F0rmB0und"
QUOTED = 'a";alert(9);".mp4'


@pytest.mark.parametrize(("disposition", "filename"), [
    ('form-data; name="file"; filename="a%22;alert(9);%22.mp4"', QUOTED),  # Chromium, curl 7.81+
    ('form-data; name="file"; filename="a\\";alert(9);\\".mp4"', QUOTED),  # older curl: backslash escapes
    ('form-data; name="file"; filename="a";alert(9);".mp4"', QUOTED),  # a client that escapes nothing
    ('form-data; name="file"; filename="C:\\clips\\x.mp4"', "C:\\clips\\x.mp4"),  # other backslashes stay
    ('form-data; name="file"; filename="a\\\\b.mp4"', "a\\b.mp4"),
    ('form-data; name="file"; filename="line%0D%0Abreak.mp4"', "line\r\nbreak.mp4"),
    ('form-data; name="file"; filename=plain.mp4', "plain.mp4"),
    ('form-data; name="file"; filename="unterminated.mp4', "unterminated.mp4"),
    ('form-data; filename="first.mp4"; name="file"; FILENAME="second.mp4"', "first.mp4"),
])
def test_the_filename_parameter_is_read_as_the_client_meant_it(disposition, filename):
    assert disposition_params(disposition)["filename"] == filename


def test_the_parameter_after_a_quoted_filename_is_still_read():
    assert disposition_params('form-data; filename="a;b=c.mp4"; name="file"') == {"filename": "a;b=c.mp4",
                                                                                  "name": "file"}


def form_body(disposition_filename: str, video: bytes) -> bytes:
    """A form with one file part whose Content-Disposition carries ``disposition_filename`` as written."""
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename={disposition_filename}\r\n'
            "Content-Type: video/mp4\r\n\r\n").encode() + video + f"\r\n--{BOUNDARY}--\r\n".encode()


def post_form(client, body: bytes):
    return client.post("/video", content=body, headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})


@pytest.mark.parametrize("written", ['"a%22;alert(9);%22.mp4"', '"a";alert(9);".mp4"'],
                         ids=["percent-escaped", "unescaped"])
def test_a_filename_with_quotes_is_stored_with_its_quotes_and_extension(client, store_dir, sample_mp4: Path,
                                                                        written):
    video = sample_mp4.read_bytes()
    response = post_form(client, form_body(written, video))
    assert response.status_code == 201, response.text
    assert response.json()["name"] == QUOTED
    assert (store_dir / QUOTED).read_bytes() == video


def test_escaped_line_breaks_in_a_filename_are_dropped_like_other_control_characters(client, sample_mp4: Path):
    response = post_form(client, form_body('"line%0D%0Abreak.mp4"', sample_mp4.read_bytes()))
    assert response.json()["name"] == "linebreak.mp4"
