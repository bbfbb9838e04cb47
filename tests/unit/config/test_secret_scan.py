"""Secrets never reach user data (k3s_infra/config/secret_scan.py): add-on values travel in the
servers' user data (gzip+base64 is not encryption), so values that look like a secret are
refused at any depth without being echoed, while ordinary values (references to Secrets,
image digests, host names, ARNs of roles) are not mistaken for secrets.
"""

from __future__ import annotations

import pytest

SECRET_VALUES = {
    "env map": {"env": {"GF_SECURITY_ADMIN_PASSWORD": "hunter2"}},
    "extraEnv entry": {"extraEnv": [{"name": "SMTP_API_KEY", "value": "x1"}]},
    "deep token": {"a": {"b": {"auth": {"bearerToken": "abc"}}}},
    "client secret": {"oidc": {"client_secret": "s"}},
    "credentials": {"credentials": "user:pass"},
    "PEM block": {"tls": {"cert": ["-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"]}},
    "AWS access key": {"storage": {"id": "AKIAIOSFODNN7EXAMPLE"}},
    "AWS secret key": {"storage": {"s": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
    "URL with a password": {"db": {"url": "postgres://app:hunter2@db.example.com:5432/app"}},
}

NOT_SECRETS = {
    "admin": {"existingSecret": "grafana-admin", "userKey": "user", "passwordKey": "password"},
    "image": {"tag": "11.2.0-ubuntu", "digest": "sha256:" + "0123456789abcdef" * 4},
    "ingress": {"hosts": ["grafana.example.com"], "tls": [{"secretName": "grafana-tls"}]},
    "url": "https://grafana.example.com/some/Long/Path/With/Mixed/Case123",
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"}},
    "createSecret": True, "tokenTTL": 3600, "extraEnv": [{"name": "GF_LOG_LEVEL", "value": "debug"}],
}


@pytest.mark.parametrize("case", sorted(SECRET_VALUES))
def test_secret_looking_addon_values_are_refused_at_any_depth(env_document, case):
    from k3s_infra.config import ConfigError, validate

    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "values": SECRET_VALUES[case]}}
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    ((path, message),) = caught.value.problems
    assert path.startswith("addons.grafana.values.") and "secret_values" in message
    assert "hunter2" not in str(caught.value)  # the secret itself is not echoed


def test_normal_addon_values_are_not_mistaken_for_secrets(env_document):
    from k3s_infra.config import validate

    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "values": NOT_SECRETS}}
    validate(document, "dev.yaml")
