# dpkg-deb building a package from a tree and extracting it again: tar and
# xz under dpkg-deb, writing the archive through a temporary in /tmp and
# extracting "." into the target (mkdir(".") must be EEXIST, as bare).
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mkdir -p pkg/DEBIAN pkg/usr/share/doc/t pkg/usr/bin
printf 'Package: t\nVersion: 1.0\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: t\n' >pkg/DEBIAN/control
printf 'doc\n' >pkg/usr/share/doc/t/README
printf '#!/bin/sh\necho t\n' >pkg/usr/bin/t
chmod 0755 pkg/usr/bin/t
stamp pkg
x env SOURCE_DATE_EPOCH=1700000000 dpkg-deb --root-owner-group -Zxz --build pkg t.deb
dpkg-deb -I t.deb | grep -E 'Package|Version|Architecture'
dpkg-deb -c t.deb | awk '{ print $1, $2, $6 }'
x dpkg-deb -x t.deb out
x dpkg-deb -e t.deb out/DEBIAN
finish
