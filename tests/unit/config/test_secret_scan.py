"""Secrets never reach user data (k3s_infra/config/secret_scan.py): add-on values travel in the
servers' user data (gzip+base64 is not encryption), so values that look like a secret are
refused at any depth without being echoed, while ordinary values (references to Secrets,
image digests, host names, ARNs of roles, the catalog's own defaults) are not mistaken for
secrets.

Where a case rests on a format, the format's owner says so:
- K3s tokens: ``K10<sha256 of the cluster CA>::<username>:<password>``, server and node (agent)
  tokens alike (docs.k3s.io/cli/token, "Token Format").
- AWS access keys: IDs AKIA.../ASIA... of 20 characters, secret keys of 40 characters
  (IAM User Guide, "Manage access keys"; the documented example key pair is used here).
- Slack incoming webhooks hooks.slack.com/services/T.../B.../<secret> (api.slack.com/messaging/webhooks);
  Discord webhooks discord.com/api/webhooks/<id>/<token> (discord.com/developers/docs/resources/webhook).
- HTTP Basic: base64 of user:password (RFC 7617); Bearer tokens (RFC 6750).
- URL user info user:password@ (RFC 3986 section 3.2.1, deprecated for passwords).
"""

from __future__ import annotations

import pytest

from k3s_infra.config.addons import secret_shaped_values
from k3s_infra.config import ConfigError, catalog, validate
from k3s_infra.config.secret_scan import Finding, scan

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret key
K3S_CA_HASH = "5b2f7d3e9a41c08e6d1f3a7b9c2e4d6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b5c7d"

SECRET_VALUES = {
    "env map": {"env": {"GF_SECURITY_ADMIN_PASSWORD": "hunter2"}},
    "extraEnv entry": {"extraEnv": [{"name": "SMTP_API_KEY", "value": "x1"}]},
    "deep token": {"a": {"b": {"auth": {"bearerToken": "abc"}}}},
    "client secret": {"oidc": {"client_secret": "s"}},
    "credentials": {"credentials": "user:pass"},
    "PEM block": {"tls": {"key": ["-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"]}},
    "AWS access key": {"storage": {"id": "AKIAIOSFODNN7EXAMPLE"}},
    "AWS secret key": {"storage": {"s": AWS_SECRET}},
    "URL with a password": {"db": {"url": "postgres://app:hunter2@db.example.com:5432/app"}},
}

# One case per bypass class of issue 24: each must be found, at the path given.
BYPASSES = {
    # key names the first scanner did not know
    "dbPass": ({"database": {"dbPass": "hunter2"}}, "database.dbPass"),
    "pwd": ({"mysql": {"pwd": "hunter2"}}, "mysql.pwd"),
    "auth as a plain value": ({"registry": {"auth": "dXNlcjpodW50ZXIy"}}, "registry.auth"),
    "bearer": ({"api": {"bearer": "hunter2"}}, "api.bearer"),
    "webhookUrl": ({"alerts": {"webhookUrl": "https://alerts.example.com/in/ops"}}, "alerts.webhookUrl"),
    "dsn": ({"sentry": {"dsn": "https://public@o1.ingest.example.io/42"}}, "sentry.dsn"),
    "sasl.jaas.config": ({"kafka": {"sasl.jaas.config": "PlainLoginModule required username=u;"}},
                         "kafka.sasl.jaas.config"),
    # numbers, lists and maps under a secret key
    "numeric PIN": ({"door": {"pin": 4711}}, "door.pin"),
    "numeric password": ({"admin": {"password": 12345678}}, "admin.password"),
    "list under a secret key": ({"passwords": ["hunter2", "hunter3"]}, "passwords[0]"),
    "map under a secret key": ({"apiTokens": {"prod": "hunter2"}}, "apiTokens.prod"),
    # connection strings
    "postgres URL": ({"db": "postgresql://app:hunter2@db.internal:5432/app"}, "db"),
    "mongodb+srv URL": ({"mongo": {"uri": "mongodb+srv://root:hunter2@cluster0.example.net/x"}}, "mongo.uri"),
    "ADO.NET": ({"sql": {"conn": "Server=db;Database=app;User Id=sa;Password=hunter2;"}}, "sql.conn"),
    # flags in strings and in argument lists
    "--password= in a string": ({"command": "backup --password=hunter2 --all"}, "command"),
    "--token in a string": ({"command": "agent --token hunter2xyz"}, "command"),
    "--api-key in an arg list": ({"args": ["serve", "--api-key", "hunter2"]}, "args[2]"),
    # Authorization headers
    "Bearer header": ({"headers": {"X-Forward": "Authorization: Bearer eyJhbGciOi.x-123"}}, "headers.X-Forward"),
    "Basic header": ({"probe": {"header": "Basic YWRtaW46aHVudGVyMg=="}}, "probe.header"),
    # webhook URLs carrying their secret
    "Slack webhook": ({"notify": {"url": "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/"
                                         "Zq8PbN3rLk5TmWx2Vy7Hs4Jd"}}, "notify.url"),
    "Discord webhook": ({"notify": {"url": "https://discord.com/api/webhooks/112233445566778899/"
                                           "Qm3xP9zL_aK7tR2wE5yU8iO1pA4sD6fG"}}, "notify.url"),
    "token in a query string": ({"notify": {"url": "https://notify.example.com/send?channel=ops&token=hunter2"}},
                                "notify.url"),
    "X-Amz-Signature": ({"artifact": "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123"}, "artifact"),
    # K3s join tokens
    "K3s server token": ({"join": f"K10{K3S_CA_HASH}::server:8d1c0e5f2a7b4c3d9e6f1a0b2c4d6e8f"}, "join"),
    "K3s agent token": ({"join": f"K10{K3S_CA_HASH}::node:3f9a1c7e5b2d8f4a6c0e1b3d5f7a9c2e"}, "join"),
    "plain long random token": ({"join": "Xr7tQ2vL9mK4pZ8wN3bH6jF1sD5gY0cA"}, "join"),
    # a key split across nesting
    "aws.secret.access.key": ({"aws": {"secret": {"access": {"key": "hunter2"}}}}, "aws.secret.access.key"),
    "api.key": ({"api": {"key": "hunter2"}}, "api.key"),
    # invisible and look-alike characters in key names
    "zero-width space": ({"pass\u200bword": "hunter2"}, "pass\u200bword"),
    "soft hyphen": ({"api\u00adtoken": "hunter2"}, "api\u00adtoken"),
    "Cyrillic a": ({"p\u0430ssword": "hunter2"}, "p\u0430ssword"),
    "fullwidth letters": ({"\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24": "hunter2"},
                          "\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24"),
    "combining accent": ({"pa\u0301ssword": "hunter2"}, "pa\u0301ssword"),
}

# Values charts really take that must stay accepted (false positives cost as much as misses).
BENIGN = {
    "references": {"existingSecret": "grafana-admin", "userKey": "user", "passwordKey": "password",
                   "tokenSecretName": "api", "passwordSecretRef": {"name": "db", "key": "password"}},
    "image": {"tag": "11.2.0-ubuntu", "digest": "sha256:" + "0123456789abcdef" * 4,
              "repository": "public.ecr.aws/eks/amazon-eks-pod-identity-webhook"},
    "ingress": {"hosts": ["grafana.example.com"], "tls": [{"secretName": "grafana-tls"}]},
    "url": "https://grafana.example.com/some/Long/Path/With/Mixed/Case123",
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"},
                       "automountServiceAccountToken": False},
    "switches and sizes": {"createSecret": True, "tokenTTL": 3600, "passwordLength": 24, "maxTokens": 5,
                           "token": {"audience": "sts.amazonaws.com", "expirationSeconds": 3600}},
    "env": [{"name": "GF_LOG_LEVEL", "value": "debug"},
            {"name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": "/etc/secrets/admin"}],
    # vault-helm server.extraSecretEnvironmentVars: the key within a Kubernetes Secret
    "vault": {"extraSecretEnvironmentVars": [{"envName": "AWS_SECRET_ACCESS_KEY", "secretName": "vault-aws",
                                              "secretKey": "AWS_SECRET_ACCESS_KEY"}]},
    # longhorn defaultSettings: a Secret's name and an S3 target with bucket@region (no password)
    "longhorn": {"backupTargetCredentialSecret": "longhorn-aws", "backupTarget": "s3://backups@eu-west-1/"},
    # cert-manager's webhook and Grafana's auth sections are configuration maps
    "config maps": {"webhook": {"timeoutSeconds": 10, "hostNetwork": False, "url": {}},
                    "auth": {"anonymous": {"enabled": True}, "basic": {"enabled": False}}},
    "grafana.ini oauth": {"auth.generic_oauth": {"client_id": "grafana", "auth_url": "https://id.example.com/auth",
                                                 "token_url": "https://id.example.com/token"}},
    "datasource": {"basicAuth": True, "basicAuthUser": "reader", "jsonData": {"oauthPassThru": True}},
    "pull secrets": {"imagePullSecrets": [{"name": "regcred"}]},
    "secret ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:grafana-admin-AbCdEf",
    "environment references": {"password": "${DB_PASSWORD}", "adminPassword": "$__file{/etc/secrets/admin}"},
    "NTH webhook settings": {"webhookURL": "", "webhookTemplate": "{{ .EventID }}", "webhookURLSecretName": "nth"},
    "flags that are no secrets": ["--use-service-account-credentials=true", "--token-ttl=3600",
                                  "--password-file=/etc/pw", "--v=2"],
    "CamelCase names": ["MyCompanyProductionClusterEuWest1Primary", "GrafanaDashboardForTheK8sClusterOverview"],
    "public certificate": "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
    "prose": "Use basic authentication behind the bearer proxy; tokens rotate daily.",
    "numbers and flags": {"replicas": 3, "port": 8443, "ratio": 0.5, "enabled": True, "pin": None},
}


@pytest.mark.parametrize("case", sorted(SECRET_VALUES))
def test_secret_looking_addon_values_are_reported_at_any_depth(env_document, case):
    """Issue 24: a lint-time warning, no longer a refusal: add-on values travel in an SSE-KMS
    object only the server roles read (bootstrap/bundle.py), so the scanner is a second guard."""
    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "values": SECRET_VALUES[case]}}
    env = validate(document, "dev.yaml")
    ((path, reason),) = secret_shaped_values(env.addons)
    assert path.startswith("addons.grafana.values.")
    assert "hunter2" not in reason  # the secret itself is not echoed


@pytest.mark.parametrize("case", sorted(BYPASSES))
def test_every_bypass_class_is_found_at_its_path(case):
    values, path = BYPASSES[case]
    found = scan(values)
    assert found and found[0].path == path, found
    assert all("hunter2" not in reason for _, reason in found)


@pytest.mark.parametrize("case", sorted(BYPASSES))
def test_every_bypass_class_is_reported_for_the_config(env_document, case):
    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "values": BYPASSES[case][0]}}
    found = secret_shaped_values(validate(document, "dev.yaml").addons)
    assert found and found[0][0].startswith("addons.grafana.values")
    assert all("hunter2" not in reason for _, reason in found)


def test_lint_warns_of_a_secret_shaped_value_naming_the_field_never_the_value(env_document, tmp_path):
    import subprocess
    import sys

    import yaml

    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "values": {"smtp": {"password": "hunter2-Xy9#kLm2"}}}}
    path = tmp_path / "dev-secret.yaml"
    path.write_text(yaml.safe_dump(document))
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "lint", "--config", str(path), "--no-checkov"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result
    line = next(x for x in result.stdout.splitlines() if "addons.grafana.values.smtp.password" in x)
    assert "warning" in line and "secret_values" in line
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(BENIGN))
def test_ordinary_values_are_not_mistaken_for_secrets(case):
    assert scan(BENIGN[case]) == []


def test_normal_addon_values_are_accepted_by_the_config(env_document):
    document = env_document("dev")
    values = {f"case{index}": value for index, (_, value) in enumerate(sorted(BENIGN.items()))}
    document["addons"] = {"grafana": {"enabled": True, "values": values}}
    validate(document, "dev.yaml")


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_the_catalogs_own_default_values_are_clean(name):
    assert scan(catalog.CATALOG[name].values) == []


def test_scan_returns_every_finding_as_path_and_reason_and_never_raises():
    """The lint will report all findings as warnings: the scanner returns them, in order."""
    values = {"a": {"password": "x"}, "b": ["--token", "y"], "c": "AKIAIOSFODNN7EXAMPLE", "ok": 1}
    found = scan(values)
    assert [f.path for f in found] == ["a.password", "b[1]", "c"]
    assert all(isinstance(f, Finding) and isinstance(f.reason, str) for f in found)
    path, reason = found[0]  # a plain (path, reason) pair
    assert (path, reason) == (found[0].path, found[0].reason)
    assert scan({"x": object(), 1: {2: None}}) == [] and scan(None) == [] and scan("plain") == []
    assert [f.path for f in scan({"pw": "x"}, path="values")] == ["values.pw"]
