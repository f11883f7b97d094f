#!/bin/sh
# (Re)indexes a flat apt repository directory: Packages, Packages.gz, Release.
set -eu
cd "$1"
dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null
gzip -9c Packages > Packages.gz
apt-ftparchive release . > Release
