"""Where the administrator logs in and where match information comes from.

OptHub's production (and development) endpoints are built in; the four keys
below override them one by one, for a local stack or a staging deployment.
"""

from __future__ import annotations

from dataclasses import dataclass as value

from pydantic import Field
from pydantic.dataclasses import dataclass

from ..settings.kinds import KEYS
from .login_state import DEFAULT_REFRESH_TOKEN_DAYS


@value(frozen=True)
class ApiSettings:
    """Where the administrator logs in and where match information comes from."""

    api_url: str
    cognito_region: str
    cognito_user_pool_id: str
    cognito_client_id: str


PRODUCTION_API = ApiSettings(
    api_url="https://tf5tepcpn5bori46x5cyxh3ehe.appsync-api.ap-northeast-1.amazonaws.com/graphql",
    cognito_region="ap-northeast-1",
    cognito_user_pool_id="ap-northeast-1_9TAMGx5NT",
    cognito_client_id="7t7snlnn801j8mjsf97eaart1s",
)
DEVELOPMENT_API = ApiSettings(
    api_url="https://jciqso7l7rhajfkt5s3dhybpcu.appsync-api.ap-northeast-1.amazonaws.com/graphql",
    cognito_region="ap-northeast-1",
    cognito_user_pool_id="ap-northeast-1_1Y69fktA0",
    cognito_client_id="24nvfsrgbuvu75h4o8oj2c2oek",
)


@dataclass(config=KEYS, kw_only=True, frozen=True)
class ApiKeys:
    """OptHub API and login (unset: OptHub production)"""

    api_url: str | None = Field(
        default=None, description="GraphQL API that says which images a match uses"
    )
    cognito_region: str | None = Field(
        default=None, description="AWS region of OptHub's Cognito user pool"
    )
    cognito_user_pool_id: str | None = Field(
        default=None, description="Cognito user pool of the login"
    )
    cognito_client_id: str | None = Field(
        default=None, description="Cognito app client of the login"
    )
    refresh_token_validity_days: float = Field(
        default=DEFAULT_REFRESH_TOKEN_DAYS,
        gt=0,
        le=3650,
        description="how long the app client's refresh token lives (Cognito's default: 30"
        " days): the login's estimated end on the page and in"
        " `opthub_runner_login_remaining_seconds`",
    )

    def api(self, *, dev: bool = False) -> ApiSettings:
        """Production (or development) endpoints, with any key set in the file winning."""
        base = DEVELOPMENT_API if dev else PRODUCTION_API
        return ApiSettings(
            api_url=self.api_url or base.api_url,
            cognito_region=self.cognito_region or base.cognito_region,
            cognito_user_pool_id=self.cognito_user_pool_id or base.cognito_user_pool_id,
            cognito_client_id=self.cognito_client_id or base.cognito_client_id,
        )
