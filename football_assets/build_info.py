"""Where the image's code came from: empty in a checkout; `docker build --build-arg GIT_URL=...
--build-arg GIT_COMMIT=$(git rev-parse HEAD)` fills it in (deploy/write_build_info.py)."""

GIT_URL = ""  # https://github.com/<owner>/<repo> or a GitLab project URL
GIT_COMMIT = ""  # the commit the image was built from
