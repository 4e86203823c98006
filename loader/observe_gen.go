package loader

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -D__TARGET_ARCH_x86" -target bpfel -type obs_event -type obs_counters -type obs_ident observe ../bpf/observe.bpf.c -- -I../bpf
