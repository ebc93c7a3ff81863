"""One contract for every match source: the catalogue file, the GraphQL API, and its cache.

Each source is given the same two matches (the file as YAML, the API as the
fake OptHub server's public and private values) and must answer alike: the
images, the environments as strings, an unknown match as ``UnknownMatch``
naming it, and no secret in a spec's ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from opthub_runner_admin.matches import MatchSource, UnknownMatch
from opthub_runner_admin.matches.cached import CachedMatchSource
from opthub_runner_admin.matches.file import FileMatchSource
from opthub_runner_admin.matches.graphql import GraphqlMatchSource
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from tests.support.tiers import using

MATCH = "3b7c0b1e-0000-4000-8000-00000000c001"
OTHER = "3b7c0b1e-0000-4000-8000-00000000c002"
NOWHERE = "3b7c0b1e-0000-4000-8000-00000000c0ff"
TOKEN = "header.payload.signature-contract"
SECRET = "contract-s3cret-value"

#: match id -> (problem image, its environment, indicator image, its environment).
Catalogue = Mapping[str, tuple[str, Mapping[str, str], str, Mapping[str, str]]]
CATALOGUE: Catalogue = {
    MATCH: ("opthub/sphere:2", {"DIM": "2", "SEED": SECRET}, "opthub/best:1", {"MODE": "min"}),
    OTHER: ("p:1", {}, "i:1", {"K": "v"}),
}


def _file_source(tmp_path: Path, catalogue: Catalogue) -> MatchSource:
    document = {
        match_id: {
            "problem": {"image": problem, "environment": dict(problem_env)},
            "indicator": {"image": indicator, "environment": dict(indicator_env)},
        }
        for match_id, (problem, problem_env, indicator, indicator_env) in catalogue.items()
    }
    path = tmp_path / "matches.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return FileMatchSource(path)


def _api_source(api: OpthubApiServer, catalogue: Catalogue) -> GraphqlMatchSource:
    api.accepted_tokens = {TOKEN}
    for match_id, (problem, problem_env, indicator, indicator_env) in catalogue.items():
        # Secrets travel as private values, the rest as public ones: the source merges them.
        private = {k: v for k, v in problem_env.items() if v == SECRET}
        public = {k: v for k, v in problem_env.items() if v != SECRET}
        api.add_match(
            match_id,
            FakeMatch(
                problem_image=problem,
                indicator_image=indicator,
                problem_public=public,
                problem_private=private,
                indicator_public=dict(indicator_env),
            ),
        )
    return GraphqlMatchSource(api.url, lambda: TOKEN, timeout=5.0)


@pytest.fixture(params=["file", using("graphql", "opthub_api"), using("cached", "opthub_api")])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> MatchSource:
    if request.param == "file":
        return _file_source(tmp_path, CATALOGUE)
    api: OpthubApiServer = request.getfixturevalue("opthub_api")
    graphql = _api_source(api, CATALOGUE)
    if request.param == "graphql":
        return graphql
    return CachedMatchSource(graphql, 60)


def test_a_match_has_its_images_and_environments(source: MatchSource) -> None:
    for match_id, (problem, problem_env, indicator, indicator_env) in CATALOGUE.items():
        spec = source.get(match_id)
        assert spec.match_id == match_id
        assert spec.problem.image == problem
        assert dict(spec.problem.environment) == dict(problem_env)
        assert spec.indicator.image == indicator
        assert dict(spec.indicator.environment) == dict(indicator_env)


def test_an_unknown_match_is_named(source: MatchSource) -> None:
    with pytest.raises(UnknownMatch) as caught:
        source.get(NOWHERE)
    assert NOWHERE in str(caught.value)


def test_asking_again_gives_the_same_spec(source: MatchSource) -> None:
    assert source.get(MATCH) == source.get(MATCH)
    assert source.get(OTHER) != source.get(MATCH)


def test_no_secret_in_a_spec_repr(source: MatchSource) -> None:
    spec = source.get(MATCH)
    assert SECRET in spec.problem.environment.values()
    assert SECRET not in repr(spec)
