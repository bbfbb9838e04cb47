import sys

from k3s_infra.cli import main

sys.exit(main())
