package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A meter measures how busy the machine's CPUs were with other processes
// while a case ran: the bench shares the machine, and other load skews the
// timing cases (the ratio lines carry this figure so that a noisy run shows).
type meter struct {
	t0          time.Time
	busy0, self float64
}

func startMeter() meter { return meter{time.Now(), machineBusy(), selfCPU()} }

// otherPct returns the share of the machine's CPU time (all CPUs) that other
// processes used since the meter started, in percent.
func (m meter) otherPct() float64 {
	wall := time.Since(m.t0).Seconds() * float64(runtime.NumCPU())
	if wall <= 0 {
		return 0
	}
	other := (machineBusy() - m.busy0) - (selfCPU() - m.self)
	return round(max(0, 100*other/wall), 1)
}

// machineBusy returns the CPU seconds all processes used since boot
// (/proc/stat: user, nice, system, irq, softirq, steal).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

// selfCPU returns the CPU seconds of this process and its waited-for
// children.
func selfCPU() float64 {
	var t float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return t
}

// loadavg returns /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
