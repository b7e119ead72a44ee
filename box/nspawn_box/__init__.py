"""The local box: a Debian 12 machine with systemd as PID 1, booted with systemd-nspawn.

It plays the part `vagrant up` plays elsewhere: an SSH login with passwordless sudo that the
Ansible roles provision and the integration tests inspect. `tfstack-box` is the command line.
"""
