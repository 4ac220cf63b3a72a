#!/usr/bin/env bash
# Install everything aqaa needs on a fresh Debian machine with Python 3.11 (idempotent, quiet when done).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for cmd in espeak-ng flite text2wave sox ffmpeg; do
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$cmd")
done
for v in english/kal_diphone english/ked_diphone us/cmu_us_slt_arctic_hts; do
  [ -d "/usr/share/festival/voices/$v" ] || need_apt+=("$v")
done
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the browser test (tests/test_browser.py)
[ -f /usr/share/dict/words ] || need_apt+=(wamerican)  # word list of `aqaa data babble`
[ -d /usr/share/games/fortunes ] || need_apt+=(fortunes)  # sentences of `aqaa data babble --source sentences`
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages (missing: ${need_apt[*]})"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox ffmpeg chromium wamerican fortunes >/dev/null
fi

# torch==2.13.0 is pinned: it installs a CPU wheel from local disk (a looser pin pulls CUDA builds).
if ! python3 -c "import aqaa, piper, pyworld, pytest" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .install-stamp ]; then
  echo "installing Python packages"
  python3 -m pip install -q --disable-pip-version-check -e '.[all]'
  touch .install-stamp
fi
