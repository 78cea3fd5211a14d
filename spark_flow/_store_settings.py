"""How object stores are reached: a profile's `[storage]` table merged with the environment.

Three clients talk to the stores (deltalake for Delta logs and commits, pyarrow.fs for data
files and markers, obstore for conditional puts), each with its own names for the same few
settings. They are resolved here once, in one order, and rendered in each client's terms, so
an endpoint set in a profile reaches all three alike.

The environment wins over the profile, as in AWS's own tools (`AWS_ENDPOINT_URL` overrides a
config file's `endpoint_url`): a job pointed at another endpoint by its launcher needs no
profile edit. Credentials never come from a spark_flow profile (those are shared files, not
secret stores): they come the standard AWS ways, the environment's keys first, then the AWS
shared config and credentials files (`AWS_PROFILE`, else `default`), resolved by botocore as the
AWS CLI resolves them (static keys, assume-role, SSO, credential_process). deltalake and obstore
read no AWS profile themselves (they would ask the instance metadata service instead), so keys
found either way are passed to every client explicitly, which also lets Python workers started
before they were set (Spark starts them from its JVM's environment) reach the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, get_args

from spark_flow.errors import InvalidArgumentError

Client = Literal["deltalake", "pyarrow", "obstore"]
CLIENTS: tuple[str, ...] = get_args(Client)
S3_SCHEMES = frozenset({"s3", "s3a", "s3n"})
# The spellings of true object_store (deltalake's and obstore's store) takes in AWS_ALLOW_HTTP.
_TRUTHY = frozenset({"true", "1", "yes", "y", "on"})

# Where the AWS SDKs (and deltalake's credential chain) look for credentials besides the keys.
_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_CREDENTIAL_FILES = (
    ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    ("AWS_CONFIG_FILE", "~/.aws/config"),
)


@dataclass(frozen=True)
class StorageSettings:
    """A profile's `[storage]` table: where S3 and S3-compatible stores are reached.

    Attributes:
        endpoint: the S3 API's URL for MinIO, Ceph, moto ..., e.g. `http://127.0.0.1:9000`;
            None for AWS itself. `$AWS_ENDPOINT_URL` wins, then the AWS profile's endpoint_url.
        region: the buckets' region. `$AWS_REGION` (or `$AWS_DEFAULT_REGION`) wins, then the
            AWS profile's region.
        allow_http: permit an `http://` endpoint; deltalake and obstore refuse one otherwise.
            `$AWS_ALLOW_HTTP` wins.
    """

    endpoint: str | None = None
    region: str | None = None
    allow_http: bool = False

    def __post_init__(self) -> None:
        if self.endpoint is not None and (
            not isinstance(self.endpoint, str)
            or not self.endpoint.startswith(("http://", "https://"))
        ):
            raise InvalidArgumentError(
                "endpoint",
                f"expected an http:// or https:// URL, got {self.endpoint!r}",
                'Write the S3 API\'s URL, e.g. endpoint = "http://127.0.0.1:9000".',
            )
        if self.region is not None and (not isinstance(self.region, str) or not self.region):
            raise InvalidArgumentError(
                "region", f"expected a region name, got {self.region!r}", 'E.g. "eu-west-1".'
            )
        if not isinstance(self.allow_http, bool):
            raise InvalidArgumentError(
                "allow_http",
                f"expected true or false, got {self.allow_http!r}",
                "Write allow_http = true (TOML's boolean, no quotes).",
            )


# The settings in force: one slot, replaced whole by configure().
_configured = [StorageSettings()]


def configure(settings: StorageSettings) -> None:
    """Make `settings` the ones this process reaches stores with (`get_session` passes the
    profile's `[storage]` table here)."""
    if not isinstance(settings, StorageSettings):
        raise InvalidArgumentError(
            "settings",
            f"expected StorageSettings, got {type(settings).__name__}",
            "Pass StorageSettings(endpoint=..., region=..., allow_http=...).",
        )
    _configured[0] = settings


@dataclass(frozen=True)
class S3Settings:
    """The S3 settings in force: the configured ones with the environment's on top."""

    endpoint: str | None
    region: str | None
    allow_http: bool
    access_key: str | None
    secret_key: str | None
    session_token: str | None

    def variables(self) -> dict[str, str]:
        """These settings as the `AWS_*` variables that set them (the ones set only)."""
        named = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true" if self.allow_http else None,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }
        return {name: value for name, value in named.items() if value is not None}


def s3_settings(*, strict: bool = True) -> S3Settings:
    """The S3 settings this process has now (read per call: the environment may change).

    Raises:
        InvalidArgumentError: the AWS profile cannot be resolved (`profile_keys`); with
            `strict=False` its keys are left out instead, for callers that may not use S3.
    """
    env, current = os.environ, _configured[0]
    allow_http = env.get("AWS_ALLOW_HTTP")
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    token = env.get("AWS_SESSION_TOKEN")
    if not (key and secret):
        try:
            key, secret, token = profile_keys() or (None, None, None)
        except InvalidArgumentError:
            if strict:
                raise
            key = secret = token = None
    profile_endpoint, profile_region = profile_settings()
    return S3Settings(
        endpoint=env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or profile_endpoint
        or current.endpoint,
        region=env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or profile_region
        or current.region,
        allow_http=current.allow_http if allow_http is None else _is_true(allow_http),
        access_key=key,
        secret_key=secret,
        session_token=token,
    )


def _shared_files() -> tuple[str | None, tuple[str, ...], tuple[int | None, ...]] | None:
    """The AWS profile in force, the shared files and their times, or None without files."""
    files = tuple(
        Path(os.environ.get(name, default)).expanduser() for name, default in _CREDENTIAL_FILES
    )
    stamps = tuple(f.stat().st_mtime_ns if f.is_file() else None for f in files)
    if not any(stamps):
        return None
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    return profile, tuple(map(str, files)), stamps


def profile_keys() -> tuple[str, str, str | None] | None:
    """The keys the AWS profile in force gives (`AWS_PROFILE`, else `default`), or None when
    there are no shared AWS files or they give none.

    Raises:
        InvalidArgumentError: `AWS_PROFILE` names no profile, or botocore cannot resolve it
            (an expired SSO login, a role it may not assume).
    """
    shared = _shared_files()
    credentials = None if shared is None else _profile_credentials(*shared)
    if credentials is None:
        return None
    frozen = credentials.get_frozen_credentials()  # refreshed when temporary keys near expiry
    return frozen.access_key, frozen.secret_key, frozen.token


@lru_cache(maxsize=4)
def _profile_credentials(
    profile: str | None, files: tuple[str, ...], stamps: tuple[int | None, ...]
) -> Any:
    """botocore's credentials for `profile` from the shared files only (never the instance
    metadata service, which the clients ask themselves); cached until a file changes."""
    del files, stamps  # the cache key: the same files unchanged give the same credentials
    try:
        import botocore.exceptions  # type: ignore[import-untyped]
        import botocore.session  # type: ignore[import-untyped]
    except ImportError:  # botocore comes with spark_flow; a trimmed install keeps the clients'
        return None
    try:
        session = botocore.session.Session(profile=profile)
        resolver = session.get_component("credential_provider")
        for source in ("env", "container-role", "iam-role"):
            resolver.remove(source)
        return session.get_credentials()
    except botocore.exceptions.ProfileNotFound as exc:
        raise InvalidArgumentError(
            "AWS_PROFILE",
            f"a profile of the AWS config or credentials file, got {profile!r}: {exc}",
            "Name a profile those files define, or unset AWS_PROFILE to use [default].",
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise InvalidArgumentError(
            "AWS_PROFILE",
            f"credentials from the AWS profile {profile or 'default'!r}, got an error: {exc}",
            "Renew the profile's login (aws sso login), or set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY.",
        ) from exc


def profile_settings() -> tuple[str | None, str | None]:
    """The S3 endpoint and the region the AWS profile in force sets in the shared config file
    (`endpoint_url`, or its `services` section's `s3` one; `region`), as the AWS CLI and boto3
    read them; (None, None) without one. A profile that cannot be read sets none here:
    `profile_keys` names it where keys are needed. The endpoint is None where the user opted
    out of configured endpoints (`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`, or the profile's
    `ignore_configured_endpoint_urls`), as the AWS SDKs honour it."""
    shared = _shared_files()
    if shared is None:
        return None, None
    endpoint, region, ignored = _profile_config(*shared)
    opted_out = ignored or _is_true(os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
    return (None if opted_out else endpoint), region


@lru_cache(maxsize=4)
def _profile_config(
    profile: str | None, files: tuple[str, ...], stamps: tuple[int | None, ...]
) -> tuple[str | None, str | None, bool]:
    del files, stamps  # the cache key, as for _profile_credentials
    try:
        import botocore.exceptions
        import botocore.session
        from botocore.configprovider import (  # type: ignore[import-untyped]
            ConfiguredEndpointProvider,
        )
    except ImportError:
        return None, None, False
    try:
        session = botocore.session.Session(profile=profile)
        scoped = session.get_scoped_config()
        # The environment's AWS_ENDPOINT_URL(_S3) is weighed by s3_settings, over these.
        files_only = ConfiguredEndpointProvider(session.full_config, scoped, "s3", environ={})
        endpoint = files_only.provide()
    except botocore.exceptions.BotoCoreError:
        return None, None, False
    ignored = _is_true(scoped.get("ignore_configured_endpoint_urls"))
    return endpoint or None, scoped.get("region") or None, ignored


def _is_true(setting: str | None) -> bool:
    """A boolean setting in the spellings the AWS SDKs and the stores' clients take."""
    return setting is not None and setting.strip().lower() in _TRUTHY


def client_options(kind: str, client: Client) -> dict[str, Any]:
    """The settings for the store of scheme `kind` in `client`'s terms (see storage.options)."""
    if kind not in S3_SCHEMES:
        return {}
    s3 = s3_settings()
    if client == "pyarrow":
        pyarrow = {
            "endpoint_override": s3.endpoint,
            "region": s3.region,
            "access_key": s3.access_key,
            "secret_key": s3.secret_key,
            "session_token": s3.session_token,
            # A file smaller than one part goes up in one PUT, not a 3-request multipart upload.
            "allow_delayed_open": True,
        }
        if s3.endpoint is not None:
            pyarrow["scheme"] = s3.endpoint.split("://", 1)[0]
        return {name: value for name, value in pyarrow.items() if value is not None}
    delta = s3.variables()
    if client == "deltalake":
        return delta
    config = {
        name.removeprefix("AWS_").lower().replace("endpoint_url", "endpoint"): value
        for name, value in delta.items()
        if name != "AWS_ALLOW_HTTP"
    }
    return {"config": config, "client_options": {"allow_http": s3.allow_http}}


def missing_credentials() -> str | None:
    """Why no S3 client of this process can find credentials, or None when one may.

    Instance metadata (EC2, ECS) is a source no file or variable shows; only
    `AWS_EC2_METADATA_DISABLED=true` rules it out, so only then is the answer certain. The
    shared files were read by botocore (`profile_keys`): a profile there that gave no keys
    gives none to any client, which read no profile themselves.
    """
    if s3_settings().access_key is not None:
        return None
    if any(os.environ.get(name) for name in _CREDENTIAL_VARIABLES if name != "AWS_PROFILE"):
        return None
    shared = _shared_files()
    if shared is not None and find_spec("botocore") is None:
        return None  # unread here: pyarrow's SDK may still find keys in them
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true":
        return None
    if shared is not None:
        return (
            "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset, the AWS "
            f"profile {shared[0] or 'default'!r} gives no keys in {' or '.join(shared[1])}, "
            "and instance metadata is disabled. Add the keys (or a role, SSO or "
            "credential_process) to that profile, or set AWS_PROFILE to one that has them"
        )
    return (
        "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset, there is no "
        "~/.aws/credentials or ~/.aws/config, and instance metadata is disabled"
    )


def s3_problem(settings: S3Settings) -> str | None:
    """Why no S3 client of this process can use `settings`, or None when one may."""
    endpoint = settings.endpoint
    if endpoint is not None and not endpoint.lower().startswith(("http://", "https://")):
        # pyarrow takes host:port for a scheme and obstore panics on it: name the setting.
        return (
            f"the endpoint {endpoint!r} is no http:// or https:// URL: write it whole in "
            "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the AWS profile's endpoint_url or the "
            f"[storage] table, e.g. http://{endpoint}"
        )
    problem = missing_credentials()
    plain_http = (endpoint or "").startswith("http://")
    if problem is None and plain_http and not settings.allow_http:
        problem = (
            f"the endpoint {settings.endpoint} is plain http, which deltalake refuses "
            "unless allowed: set allow_http = true in the profile's [storage] table "
            "(or AWS_ALLOW_HTTP=true)"
        )
    return problem


# Where Google's and Azure's clients find credentials without a request (variables, the CLIs'
# files); on their own VMs (GCE, GKE, Dataproc; Azure VMs) the metadata server has them.
_GCS_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GCE_METADATA_HOST",
    "K_SERVICE",  # Cloud Run and Cloud Functions
    "CLOUD_RUN_JOB",
)
_AZURE_VARIABLES = (
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USE_AZURE_CLI",
    "AZURE_STORAGE_USE_EMULATOR",
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
)
_DMI = Path("/sys/class/dmi/id")


def credentials_problem(kind: str) -> str | None:
    """Why no client of this process can find credentials for the Google Cloud or Azure store
    of scheme `kind`, or None when one may (S3: `s3_problem`).

    Without credentials those clients do not fail: they ask a metadata server that is not
    there, retrying for minutes. So the answer is certain only off the clouds' own VMs, which
    the machine's DMI data names (as google-auth and the Azure SDKs check).
    """
    if kind in ("gs", "gcs"):
        config = Path(os.environ.get("CLOUDSDK_CONFIG", "~/.config/gcloud")).expanduser()
        if (
            any(os.environ.get(name) for name in _GCS_VARIABLES)
            or (config / "application_default_credentials.json").is_file()
            or _dmi("product_name").startswith("Google")
        ):
            return None
        return (
            "no Google Cloud credentials: GOOGLE_APPLICATION_CREDENTIALS and "
            "GOOGLE_SERVICE_ACCOUNT are unset, there is no application default credentials "
            "file (gcloud auth application-default login), and this is no Google Cloud VM"
        )
    if any(os.environ.get(name) for name in _AZURE_VARIABLES) or (
        Path("~/.azure").expanduser().is_dir() or _dmi("sys_vendor") == "Microsoft Corporation"
    ):
        return None
    return (
        "no Azure credentials: AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN, "
        "AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE are unset, there is no Azure CLI "
        "login (~/.azure), and this is no Azure VM"
    )


def _dmi(name: str) -> str:
    """The machine's DMI field `name` (who made the VM), or "" where the system has none."""
    try:
        return (_DMI / name).read_text().strip()
    except OSError:
        return ""


# Prefixes of the variables the stores' clients read (credentials, endpoints, regions).
_STORE_VARIABLES = ("AWS_", "GOOGLE_", "AZURE_")


def store_environment() -> dict[str, str]:
    """This process's store variables (AWS_*, GOOGLE_*, AZURE_*), for `adopt_environment`, with
    the configured `[storage]` settings as the variables that would set them.

    The Python processes Spark starts (a data source's planner, its readers) inherit the
    environment the JVM started with, not variables the driver set since (a notebook, a test
    fixture), nor what `configure` set here (a profile's endpoint); the driver hands them its
    own this way. Spark redacts option values that name a secret in its plans and UI.
    """
    variables = {k: v for k, v in os.environ.items() if k.startswith(_STORE_VARIABLES)}
    # The environment already wins there, so no variable is contradicted. Not strict: every
    # delta call registers these, local ones too, and a broken AWS profile (an expired SSO
    # login) must not stop work that never touches S3; a store call names the profile.
    # The keys of an AWS profile too: the shared files may not be on the executors' machines.
    for name, value in s3_settings(strict=False).variables().items():
        variables.setdefault(name, value)
    return variables


def adopt_environment(variables: Mapping[str, str]) -> None:
    """Take the driver's store variables (`store_environment`) into this process."""
    for name, value in variables.items():
        if name.startswith(_STORE_VARIABLES):
            os.environ[name] = value
