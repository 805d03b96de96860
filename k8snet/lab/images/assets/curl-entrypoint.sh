#!/bin/sh
# curlimages/curl's entrypoint: arguments that start with "-" are options for curl.
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ]; then
  set -- curl "$@"
fi
exec "$@"
