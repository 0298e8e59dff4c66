@echo off
rem Starts the vnet next to this script with the config.ini beside it.
rem A shortcut to this file in shell:startup starts it at logon.
cd /d "%~dp0"
vnet.exe config.ini
