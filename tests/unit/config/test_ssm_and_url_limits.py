"""Names other services parse, held to those services' limits.

``nodes.ami_parameter.*`` (Parameter Store; Systems Manager User Guide, "Parameter Store
requirements and constraints" and "Working with parameter hierarchies"): a hierarchy "can have
a maximum depth of fifteen levels", and a name is at most 1,011 characters "including the full
length of the parameter ARN" (arn:aws:ssm:eu-west-1:123456789012:parameter is 44 of them here,
so 967 remain for the name).

The host of an https URL (``k3s.release_url``, ``addons.<name>.repo``): an RFC 1123 host name
(section 2.1, with RFC 952's labels: letters, digits and '-', not starting or ending with '-',
1-63 characters each, 253 in all; an empty label, as in a trailing dot, is refused) or an IPv4
address (a mirror reached by address); a port from 1 to 65535 (RFC 6335, the port range).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import validate
from tests.support.config_errors import paths, refused

NAME_ROOM = 1011 - len("arn:aws:ssm:eu-west-1:123456789012:parameter")  # dev: eu-west-1, 123456789012


def _parameter(dev: dict, name: str) -> dict:
    dev["nodes"] = {"ami_parameter": {"x86_64": name}}
    return dev


def test_the_adversarial_fifty_levels_are_refused(dev):
    name = "/" + "/".join(["level" + "x" * 95] * 50)
    assert len(name) == 5050
    error = refused(_parameter(dev, name))
    assert paths(error) == ["nodes.ami_parameter.x86_64"] and "1011 characters" in str(error)


def test_fifteen_levels_are_accepted_and_sixteen_refused(dev):
    fifteen = "/" + "/".join(f"l{n}" for n in range(15))
    assert validate(_parameter(dev, fifteen), "env.yaml").nodes.ami_parameter.x86_64 == fifteen
    error = refused(_parameter(dev, fifteen + "/l15"))
    assert paths(error) == ["nodes.ami_parameter.x86_64"]
    assert "at most 15 levels, got 16" in str(error)


def test_the_name_and_its_arn_fit_1011_characters(dev):
    assert NAME_ROOM == 967
    fits = "/team/" + "a" * (NAME_ROOM - 6)
    assert validate(_parameter(dev, fits), "env.yaml").nodes.ami_parameter.x86_64 == fits
    error = refused(_parameter(dev, fits + "a"))
    assert paths(error) == ["nodes.ami_parameter.x86_64"]
    assert "at most 1,011 characters with its ARN (44 here), got 968 + 44" in str(error)


@pytest.mark.parametrize("url, fragment", [
    ("https://-bad-.example.com/k3s", "'-bad-' is not a DNS label"),
    ("https://bad-.example.com/k3s", "'bad-' is not a DNS label"),
    ("https://mirror.-example.com/k3s", "'-example' is not a DNS label"),
    ("https://a..example.com/k3s", "'' is not a DNS label"),
    ("https://example.com./k3s", "'' is not a DNS label"),
    ("https://" + "a" * 64 + ".example.com/k3s", "is not a DNS label"),
    ("https://" + ".".join(["a" * 60] * 5) + "/k3s", "at most 253 characters"),
    ("https://300.1.1.1/k3s", "neither an IP address"),
    ("https://010.0.0.1/k3s", "neither an IP address"),
    ("https://mirror.example.com:0/k3s", "port 0 is outside 1-65535"),
    ("https://mirror.example.com:65536/k3s", "port 65536 is outside 1-65535"),
])
def test_a_url_host_that_is_no_host_name_is_refused(dev, url, fragment):
    dev.setdefault("k3s", {})["release_url"] = url
    error = refused(dev)
    assert paths(error) == ["k3s.release_url"] and fragment in str(error)


def test_a_chart_repository_host_is_checked_the_same(dev):
    dev["addons"] = {"cert_manager": {"repo": "https://charts-.example.com/jetstack"}}
    error = refused(dev)
    assert paths(error) == ["addons.cert_manager.repo"] and "'charts-' is not a DNS label" in str(error)


@pytest.mark.parametrize("url", [
    "https://github.com/k3s-io/k3s/releases/download",
    "https://mirror.example.com:8443/k3s",
    "https://Mirror.Example.COM/k3s",            # host names are case-insensitive (RFC 4343)
    "https://xn--bcher-kva.example/k3s",          # an IDN in its ASCII (punycode) form
    "https://10.0.0.5/k3s",                       # a mirror by IPv4 address
    "https://a.b/k3s",
    "https://" + "a" * 63 + ".example.com",
])
def test_host_names_and_addresses_are_accepted(dev, url):
    dev.setdefault("k3s", {})["release_url"] = url
    assert validate(dev, "env.yaml").k3s.release_url == url
