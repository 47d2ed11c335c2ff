"""Tags in the index: the indexer keeps each track's tags, recommendations show them and
``tag=`` re-ranks by them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crossmodal.apps.cli import main
from crossmodal.data import read_manifest
from crossmodal.data.synth.corpus import SynthConfig, generate_corpus
from crossmodal.errors import CrossmodalError
from crossmodal.model import CrossModalModel, ModelConfig
from crossmodal.retrieval.indexer import Indexer, library_files
from crossmodal.retrieval.recommender import Recommender
from crossmodal.retrieval.store import IndexStore
from crossmodal.tagging import Tagger, TrackTags


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    return generate_corpus(
        out, SynthConfig(clips=6, size=48, split=(0.5, 0.0, 0.5)), progress=False
    )


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger("msd")


def _model() -> CrossModalModel:
    torch.manual_seed(0)
    return CrossModalModel.from_config(ModelConfig(embed_dim=32)).eval()


@pytest.fixture(scope="module")
def tagged_index(tmp_path_factory: pytest.TempPathFactory, corpus: Path, tagger: Tagger) -> Path:
    index_dir = tmp_path_factory.mktemp("tagged") / "index"
    libraries = {"music": library_files(corpus, "music"), "video": library_files(corpus, "video")}
    report = Indexer(_model(), index_dir, tagger=tagger).index(libraries)
    assert report.failed == []
    return index_dir


def test_index_keeps_each_tracks_tags(tagged_index: Path, corpus: Path, tagger: Tagger) -> None:
    with IndexStore.open(tagged_index) as store:
        music = store.snapshot.items("music")
        videos = store.snapshot.items("video")
    assert len(music) == 6
    for item in music:
        stored = TrackTags.from_json(item.extra["tags"])
        direct = tagger.tag_file(item.path)
        assert stored.model == "msd"
        assert stored.num_windows == direct.num_windows
        np.testing.assert_allclose(stored.probabilities, direct.probabilities, atol=1e-6)
    assert all("tags" not in item.extra for item in videos)


def test_recommendations_carry_top_tags_and_rerank_by_tag(tagged_index: Path, corpus: Path) -> None:
    rec = Recommender.load(tagged_index)
    query = read_manifest(corpus)[0].video
    plain = rec.recommend_music(query, k=6)
    with IndexStore.open(tagged_index) as store:
        by_path = {
            i.path: TrackTags.from_json(i.extra["tags"]) for i in store.snapshot.items("music")
        }
    for match in plain:
        assert match.tags == pytest.approx(dict(by_path[match.path].top(3)))

    # weight 0: the cosine order; a weight that outweighs any cosine gap (stored
    # probabilities differ by ≥ 1e-6 unless equal): the order of p(happy)
    same = rec.recommend_music(query, k=6, tag="happy", tag_weight=0.0)
    assert [m.path for m in same] == [m.path for m in plain]
    happy = rec.recommend_music(query, k=6, tag="Happy", tag_weight=1e6)
    p_happy = {path: tags.probability("happy") for path, tags in by_path.items()}
    expected = sorted(p_happy.values(), reverse=True)
    assert [p_happy[m.path] for m in happy] == expected
    assert sorted(m.path for m in happy) == sorted(p_happy)
    assert [m.rank for m in happy] == list(range(1, 7))
    assert [m.tags["Happy"] for m in happy] == pytest.approx(expected)
    # a small k still looks at every candidate before cutting
    top2 = rec.recommend_music(query, k=2, tag="happy", tag_weight=1e6)
    assert [p_happy[m.path] for m in top2] == expected[:2]
    with pytest.raises(CrossmodalError, match="unknown tag 'joyful'"):
        rec.recommend_music(query, k=3, tag="joyful")
    rec.close()


@pytest.mark.slow
def test_tag_query_on_an_untagged_index_says_how_to_fix(tmp_path: Path, corpus: Path) -> None:
    index_dir = tmp_path / "index"
    libraries = {"music": library_files(corpus, "music"), "video": library_files(corpus, "video")}
    Indexer(_model(), index_dir).index(libraries)
    rec = Recommender.load(index_dir)
    query = read_manifest(corpus)[0].video
    assert all(m.tags is None for m in rec.recommend_music(query, k=3))
    with pytest.raises(CrossmodalError, match=r"index --rebuild --tagger msd"):
        rec.recommend_music(query, k=3, tag="happy")
    rec.close()


@pytest.mark.slow
def test_cli_index_tags_when_asked_and_recommend_prints_them(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crossmodal.apps.cli import build_parser

    model_file = tmp_path / "model.pt"
    _model().save(model_file)
    index_dir = tmp_path / "index"
    args = ["index", "--checkpoint", str(model_file), "--music", str(corpus)]
    # off by default: tagging costs several times the indexing itself
    assert build_parser().parse_args([*args, "--out", str(index_dir)]).tagger == "none"
    args += ["--tagger", "msd"]
    assert main([*args, "--videos", str(corpus), "--out", str(index_dir), "--device", "cpu"]) == 0
    capsys.readouterr()
    query = str(read_manifest(corpus)[0].video)
    base = ["-q", "recommend", query, "--index", str(index_dir), "-k", "3", "--device", "cpu"]
    assert main(base) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(line.rstrip().endswith(")") and "(" in line for line in lines[1:])
    assert main([*base, "--tag", "happy", "--tag-weight", "1e6", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"][query]
    happy = [r["tags"]["happy"] for r in results]
    assert happy == sorted(happy, reverse=True)
