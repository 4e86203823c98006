package loader

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -D__TARGET_ARCH_x86" -target bpfel -type vigil_event -type vigil_binding -type vigil_slot -type vigil_bind_ctl vigil ../bpf/vigil.bpf.c -- -I../bpf
