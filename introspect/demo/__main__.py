import sys

from introspect.demo.command_line import main

sys.exit(main())
