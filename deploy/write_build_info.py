"""Bake the image's source into football_assets/build_info.py at build time (Dockerfile), so the
UI links every asset to its code at that commit. Empty arguments keep the file as it is.

Usage: python deploy/write_build_info.py GIT_URL GIT_COMMIT
"""

import json
import re
import sys
from pathlib import Path

TARGET = Path("football_assets/build_info.py")


def main(url: str, commit: str) -> int:
    url, commit = url.strip().rstrip("/"), commit.strip()
    if not url or not commit:
        # No links: the UI shows each asset's file and line inside the image instead.
        print("build_info: GIT_URL and GIT_COMMIT not both given; code references stay local")
        return 0
    if not re.fullmatch(r"https://[^\s\"']+", url) or not ("github" in url or "gitlab" in url):
        print(f"GIT_URL={url!r}: give the https URL of the GitHub or GitLab repository")
        return 2
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        print(f"GIT_COMMIT={commit!r}: give a commit id, e.g. $(git rev-parse HEAD)")
        return 2
    text = TARGET.read_text(encoding="utf-8")
    text = re.sub(r'^GIT_URL = "".*$', f"GIT_URL = {json.dumps(url)}", text, flags=re.M)
    text = re.sub(r'^GIT_COMMIT = "".*$', f"GIT_COMMIT = {json.dumps(commit)}", text, flags=re.M)
    TARGET.write_text(text, encoding="utf-8")
    print(f"build_info: {url} at {commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
