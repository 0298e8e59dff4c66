#!/bin/sh
# Starts the vnet next to this script with the config.ini beside it, from
# wherever it is called (a desktop launcher, cron @reboot, another shell).
cd "$(dirname "$0")" && exec ./vnet config.ini
