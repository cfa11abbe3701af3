package egress_test

import "strconv"

func itoa(i int) string         { return strconv.Itoa(i) }
func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
