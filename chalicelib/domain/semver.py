"""Semantic version precedence (semver.org, section 11) and the patch bump for step edits."""

from __future__ import annotations

from chalicelib.domain.validation import SEMVER

_Key = tuple[int, int, int, tuple[tuple[int, int | str], ...]]


def precedence(version: str) -> _Key:
    match = SEMVER.fullmatch(version)
    if not match:
        raise ValueError(f"{version!r} is not a semantic version")
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        # A release ranks above every pre-release of the same version.
        return int(major), int(minor), int(patch), ((2, 0),)
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return int(major), int(minor), int(patch), parts


def is_newer(candidate: str, than: str) -> bool:
    return precedence(candidate) > precedence(than)


def bump_patch(version: str) -> str:
    major, minor, patch, pre = precedence(version)
    # 1.2.3 -> 1.2.4; 1.2.3-rc.1 -> 1.2.3 (the release follows its pre-release)
    if pre != ((2, 0),):
        return f"{major}.{minor}.{patch}"
    return f"{major}.{minor}.{patch + 1}"
