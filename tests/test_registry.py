"""The one registry helper: unique names, metadata filters, close-match hints, argument
checks made before the factory runs."""

from __future__ import annotations

import pytest

from crossmodal.errors import CrossmodalError
from crossmodal.registry import BadArgumentsError, Registry, UnknownNameError


def _registry() -> tuple[Registry[tuple], list[dict]]:
    calls: list[dict] = []
    reg: Registry[tuple] = Registry("widget")

    @reg.register("round_widget", kind="proxy")
    def round_widget(*, radius: float = 1.0, colour: str = "red") -> tuple:
        calls.append({"radius": radius, "colour": colour})
        return ("round", radius, colour)

    def square(side: float, *, colour: str = "blue") -> tuple:
        calls.append({"side": side})
        return ("square", side, colour)

    reg.register("square_widget", square, kind="pair")
    return reg, calls


def test_create_passes_arguments_and_lists_by_metadata() -> None:
    reg, calls = _registry()
    assert reg.create("round_widget", radius=2.5) == ("round", 2.5, "red")
    assert reg.create("square_widget", side=3) == ("square", 3, "blue")
    assert reg.names() == ["round_widget", "square_widget"]
    assert reg.names(kind="proxy") == ["round_widget"]
    assert reg.names(kind="nothing") == []
    assert "square_widget" in reg
    assert "circle" not in reg
    assert reg.options("square_widget") == {"side": ..., "colour": "blue"}
    assert len(calls) == 2


def test_unknown_name_hints_close_matches() -> None:
    reg, _ = _registry()
    with pytest.raises(UnknownNameError) as info:
        reg.create("round_widgt")
    message = str(info.value)
    assert "unknown widget 'round_widgt'" in message
    assert "Did you mean 'round_widget'" in message
    assert isinstance(info.value, CrossmodalError)
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("round_widget", {"radius": 1, "size": 2}, "size"),
        ("square_widget", {}, "side"),
    ],
)
def test_bad_arguments_are_refused_before_the_factory_runs(
    name: str, kwargs: dict, fragment: str
) -> None:
    reg, calls = _registry()
    with pytest.raises(BadArgumentsError) as info:
        reg.create(name, **kwargs)
    assert fragment in str(info.value)
    assert "options:" in str(info.value)
    assert calls == []


def test_names_are_unique() -> None:
    reg, _ = _registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("round_widget", lambda: ())


def test_builtin_modules_load_on_first_lookup() -> None:
    reg: Registry[object] = Registry("thing", builtin_modules=["crossmodal.no_such_module_x"])
    with pytest.raises(ModuleNotFoundError):
        reg.names()
