"""`python -m tfserving_standin --port=8500 --rest_api_port=8501 --model_config_file=...`"""

import sys

from tfserving_standin.server import main

sys.exit(main(sys.argv))
