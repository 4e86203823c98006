# Named network namespaces with iproute2: `ip netns add` pins a namespace
# with a bind mount of an nsfs file (a mount whose root is "net:[N]"), and
# `ip netns exec` runs a command in it inside a mount namespace of its own,
# with /sys unmounted and mounted again. Twice, so the second namespace's
# mounts take ids the first one's left behind. (No rtnetlink query: under a
# policy with address rules vigil performs sendmsg itself, and a netlink
# attribute that carries a descriptor, like the NETNSA_FD that `ip netns
# list` and `ip link` send for each named namespace, is read in the
# sender's descriptor table: README, known gaps.)
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
n=vigil-conformance-$$
x ip netns add "$n-a"
x ip netns exec "$n-a" cat /etc/hostname >a.txt
x ip netns exec "$n-a" ls /sys/class/net >>a.txt
x ip netns add "$n-b"
x ip netns exec "$n-b" cat /etc/hostname >b.txt
x ip netns exec "$n-b" ls /sys/class/net >>b.txt
ls /run/netns | grep -c "^$n-"
x ip netns del "$n-a"
x ip netns del "$n-b"
ls /run/netns | grep -c "^$n-"
finish
