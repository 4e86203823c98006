package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// observeLostNothing checks the summary line `vigil observe` ends its
// stderr with: a run that dropped records (ring buffer full) did less work
// than it promises, so its time would flatter it.
func observeLostNothing(stderrPath string) error {
	f, err := os.Open(stderrPath)
	if err != nil {
		return fmt.Errorf("reading vigil observe's summary: %w", err)
	}
	defer f.Close()
	var last map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == "observe finished" {
			last = m
		}
	}
	if last == nil {
		return errors.New("vigil observe printed no summary line")
	}
	lost, ok := last["lost"].(float64)
	if !ok {
		return errors.New("vigil observe's summary has no lost count")
	}
	if lost != 0 {
		return fmt.Errorf("vigil observe lost %.0f records (ring buffer full): its time would not count them", lost)
	}
	return nil
}
