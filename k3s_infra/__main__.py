from k3s_infra.cli import entry

entry()
