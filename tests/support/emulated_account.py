"""The emulated AWS account every end-to-end test deploys into (tests/e2e/conftest.py
builds it in a moto server)."""

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account, as in environments/dev.yaml
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
AMI_PARAMETER_ARM64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
