#!/usr/bin/python
"""Ansible module: check a models.config text against TF Serving's ModelServerConfig schema."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tensorflow_serving_config_check
short_description: Check a models.config text against TF Serving's ModelServerConfig schema
description:
  - Parses the text with the real C(tensorflow.serving.ModelServerConfig) protobuf schema (shipped in the
    C(tensorflow-serving-api) package) and applies the checks the server applies when it loads a config
    (duplicate model names, relative base paths).
  - Runs where it is delegated to, normally the controller; changes nothing.
  - Needs C(protobuf) and C(tensorflow-serving-api) importable by that Python; install the latter with
    C(pip install --no-deps tensorflow-serving-api) to avoid pulling in TensorFlow.
options:
  content:
    description: The text-format ModelServerConfig to check.
    type: str
    required: true
"""

RETURN = r"""
content:
  description: The checked text, unchanged, so the caller writes exactly what was checked.
  type: str
  returned: success
models:
  description: Name and base path of every configured model.
  type: list
  elements: dict
  returned: success
"""

# Ansible modules keep their documentation first, then the imports.
from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={"content": {"type": "str", "required": True}}, supports_check_mode=True
    )
    content = module.params["content"]
    try:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2
    except ImportError as error:
        module.fail_json(
            msg=f"cannot check models.config on the controller ({error}); install protobuf and "
            "`pip install --no-deps tensorflow-serving-api` into the Python that runs Ansible"
        )
        return

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(content, config)
    except text_format.ParseError as error:
        module.fail_json(msg=f"Error parsing text-format tensorflow.serving.ModelServerConfig: {error}")
        return

    seen: set[str] = set()
    for model in config.model_config_list.config:
        if model.name in seen:
            module.fail_json(msg=f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if not (model.base_path.startswith("/") or "://" in model.base_path):
            module.fail_json(
                msg=f"Expected model {model.name} to have an absolute path or URI; got {model.base_path}"
            )

    models = [{"name": m.name, "base_path": m.base_path} for m in config.model_config_list.config]
    module.exit_json(changed=False, content=content, models=models)


if __name__ == "__main__":
    main()
