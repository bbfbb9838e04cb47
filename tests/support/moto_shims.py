"""The moto 5.2.5 shims live in k3s_infra/emulator/ (shims*.py), shipped with the [emulator]
extra for `k3s-infra emulator`; the tests' moto server applies the same ones."""

from k3s_infra.emulator.shims import MOTO_VERSION, _roll_back, apply, generated_secret_string  # noqa: F401
