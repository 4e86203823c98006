# sed -i: in-place editing through a temporary file renamed over the
# original, keeping its mode and owner; backups; following symlinks.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
printf 'alpha\nbeta\ngamma\n' >plain
printf 'one\ntwo\n' >owned
chmod 0640 owned
chown 1234:5678 owned
printf 'x=1\n' >target
ln -s target link
mkdir d
for i in 1 2 3 4 5; do printf 'line %s\n' "$i" >"d/f$i"; done
x sed -i 's/beta/BETA/' plain
x sed -i 's/one/ONE/' owned
x sed -i.bak 's/gamma/GAMMA/' plain
x sed -i --follow-symlinks 's/1/2/' link
x sed -i -e '1i header' -e '$a footer' d/*
x sed -n '2p' plain owned target
x cat plain owned target d/f3
finish
