package sysinfo

import "testing"

func TestCatalogIsConsistent(t *testing.T) {
	for _, name := range Inspectable() {
		s, ok := Lookup(name)
		if !ok {
			t.Fatalf("%s listed but not found", name)
		}
		if got, _ := ByNr(s.Nr); got != s || Name(s.Nr) != name {
			t.Errorf("%s: number %d does not map back", name, s.Nr)
		}
		if s.Keys.Has(KeyPath) && len(s.PathArgs()) == 0 && s.ArgIndex(ArgFd) < 0 {
			t.Errorf("%s: path key without a path or fd argument", name)
		}
		if s.Keys.Has(KeyFlags) && s.Flags == FlagsNone {
			t.Errorf("%s: flags key without a flag family", name)
		}
		for i, a := range s.Args {
			if (a == ArgOpenHow || a == ArgCloneArgs || a == ArgSockaddr || a == ArgDestAddr || a == ArgXattrValue) && (i == 5 || s.Args[i+1] != ArgSize) {
				t.Errorf("%s: argument %d needs a following size", name, i)
			}
		}
	}
}

func TestKnownNumbers(t *testing.T) {
	for name, nr := range map[string]int{"read": 0, "open": 2, "openat": 257, "openat2": 437, "clone3": 435, "fchmodat2": 452,
		"sendto": 44, "sendmsg": 46, "sendmmsg": 307} {
		if got, ok := Number(name); !ok || got != nr {
			t.Errorf("Number(%s) = %d, %v; want %d", name, got, ok, nr)
		}
		if Name(nr) != name {
			t.Errorf("Name(%d) = %q, want %s", nr, Name(nr), name)
		}
	}
	if Name(-1) != "" || Name(100000) != "" {
		t.Error("out-of-range numbers must have no name")
	}
}
