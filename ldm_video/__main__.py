import sys

from ldm_video.cli import main

sys.exit(main())
