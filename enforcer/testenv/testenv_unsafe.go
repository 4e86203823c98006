package testenv

import "unsafe"

func uintptrOf(p *[3]uint16) uintptr { return uintptr(unsafe.Pointer(p)) }
