"""The web app in headless Chromium: `crossmodal serve` runs as its own process on a free
localhost port; the test uploads a generated video, listens to the results, dubs the video
and checks the downloaded file with a second decoder (decord), then uploads a text file
renamed .mp4 and reads the one-line error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests.apps.browser import MEDIA_STATE_JS, wait_for
from tests.apps.media_helpers import build_index, make_video

K = 3
# Starting the server (index, torch import) takes ~15 s on the shared CPU.
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``crossmodal serve`` on a small real index, in its own process."""
    root = tmp_path_factory.mktemp("serve")
    _, index_dir = build_index(root)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = (root / "server.log").open("w")
    args = ["serve", "--index", str(index_dir), "--port", str(port), "-k", str(K)]
    process = subprocess.Popen(
        [sys.executable, "-m", "crossmodal", *args, "--device", "cpu"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"server exited: {(root / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(url + "/library", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    try:
        wait_for(up, 60, "the server to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_upload_listen_and_dub_in_chromium(server: str, browser: Any, tmp_path: Path) -> None:
    import decord
    from selenium.webdriver.common.by import By

    video = make_video(tmp_path / "holiday.mp4", 5.0)
    browser.get(server + "/")
    browser.find_element(By.CSS_SELECTOR, "#upload-form input[type=file]").send_keys(str(video))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#results audio.track")) == K,
        60,
        f"{K} results",
    )
    assert browser.find_element(By.ID, "error").text == ""

    def players() -> list[dict[str, Any]] | None:
        states = browser.execute_script(MEDIA_STATE_JS)
        return states if all(s["ready"] >= 1 for s in states) else None

    states = wait_for(players, 20, "the players' metadata")
    tracks = [s for s in states if "/media/" in s["src"]]
    assert len(tracks) == K
    for state in tracks:  # the corpus's 4-s tracks, playable
        assert state["error"] is None
        assert state["duration"] == pytest.approx(4.0, abs=0.1)
    query = [s for s in states if "/query/" in s["src"]]
    assert len(query) == 1
    assert query[0]["duration"] == pytest.approx(5.0, abs=0.1)
    # The audio players start at the matched window.
    starts = browser.execute_script(
        "return [...document.querySelectorAll('audio.track')].map(a => a.currentTime)"
    )
    windows = [
        float(cell.text.split("–")[0])
        for cell in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr td:nth-child(5)")
    ]
    assert starts == pytest.approx(windows, abs=0.05)

    browser.find_element(By.CSS_SELECTOR, "button.dub[data-rank='1']").click()
    link = wait_for(lambda: browser.find_elements(By.ID, "dub-download"), 60, "the dubbed video")[0]
    dubbed = tmp_path / "dubbed.mp4"
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as answer:
        dubbed.write_bytes(answer.read())
    audio = decord.AudioReader(str(dubbed), sample_rate=16000, mono=True)
    frames = decord.VideoReader(str(dubbed))
    assert len(frames) == 60  # 5 s at 12 fps
    assert audio.shape[1] / 16000 == pytest.approx(5.0, abs=0.05)
    assert float(abs(audio[:].asnumpy()).max()) > 0.05  # music is there
    player = wait_for(
        lambda: [
            s
            for s in browser.execute_script(MEDIA_STATE_JS)
            if "/dubbed/" in s["src"] and s["ready"] >= 1
        ],
        20,
        "the dubbed player",
    )[0]
    assert player["duration"] == pytest.approx(5.0, abs=0.1)


def test_a_text_file_renamed_mp4_gets_one_line_in_chromium(
    server: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    fake = tmp_path / "notes.mp4"
    fake.write_text("shopping list: milk, eggs\n")
    browser.get(server + "/")
    browser.find_element(By.CSS_SELECTOR, "#upload-form input[type=file]").send_keys(str(fake))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    error = wait_for(lambda: browser.find_element(By.ID, "error").text, 30, "the error line")
    assert error == "notes.mp4 is not a video or audio file this app can read."
    assert browser.find_element(By.ID, "results").text == ""
