// Command goroutines is a conformance-suite watchee: N goroutines each
// create a directory and files, rename, link and remove some, and read them
// back, on as many OS threads as the runtime uses. It prints a summary that
// does not depend on scheduling.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goroutines DIR N")
		os.Exit(2)
	}
	root := os.Args[1]
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "goroutines: N must be a positive number")
		os.Exit(2)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sums := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sums[i], errs[i] = work(root, i)
		}(i)
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			fmt.Printf("goroutine %d: %v\n", i, err)
		}
	}
	h := sha256.New()
	for _, s := range sums {
		h.Write([]byte(s))
	}
	var names []string
	err = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		names = append(names, p)
		return err
	})
	if err != nil {
		fmt.Println("walk:", err)
		failed++
	}
	sort.Strings(names)
	fmt.Printf("goroutines=%d failed=%d entries=%d sum=%x\n", n, failed, len(names), h.Sum(nil)[:8])
	if failed > 0 {
		os.Exit(1)
	}
}

func work(root string, i int) (string, error) {
	d := filepath.Join(root, fmt.Sprintf("g%03d", i))
	if err := os.Mkdir(d, 0o750); err != nil {
		return "", err
	}
	h := sha256.New()
	for j := 0; j < 4; j++ {
		tmp := filepath.Join(d, fmt.Sprintf(".f%d.tmp", j))
		final := filepath.Join(d, fmt.Sprintf("f%d", j))
		data := []byte(fmt.Sprintf("%d/%d\n", i, j))
		if err := os.WriteFile(tmp, data, 0o640); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, final); err != nil {
			return "", err
		}
		if j == 1 {
			if err := os.Link(final, final+".hard"); err != nil {
				return "", err
			}
		}
		if j == 2 {
			if err := os.Symlink(filepath.Base(final), final+".sym"); err != nil {
				return "", err
			}
		}
		if j == 3 {
			if err := os.Remove(final); err != nil {
				return "", err
			}
			continue
		}
		b, err := os.ReadFile(final)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
