"""The competition administrator's login to OptHub (Amazon Cognito), kept alive for weeks.

One concern per module: ``credentials`` (environment or prompt), ``verify``
(JWT checks against the pool's JWKS, with a clock leeway), ``cognito``
(``InitiateAuth``), ``token_file`` (the saved refresh token) and ``provider``
(the refresh policy the match source asks for tokens).
"""
