$d0 << EOD
16.0 71.92756940000001 147.806333 29.813268099999995
64.0 80.88697904999998 126.134398 35.60038545000001
256.0 117.33727695 275.071695 43.199855100000015
1024.0 134.080533 452.29858199999995 49.244236149999985
EOD
$d1 << EOD
16.0 97.61261870000001 145.134725 65.85406440000004
64.0 152.73289119999998 262.985793 81.27818649999996
256.0 123.89743019999999 231.751867 76.92632674999997
1024.0 160.47350614999996 291.94971499999997 94.61176525000005
EOD
set terminal pngcairo size 900,520
set output "docs/bench/plots-16/pause-vs-guest-size.png"
set logscale x 2
set xlabel "guest RAM (GiB, sparse), same dirty set"
set ylabel "whole pause (ms)"
set y2label "primary rctd CPU (ms)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key top left
set grid
plot $d0 using 1:2 with linespoints title "tcp:4 pause mean", \
     $d0 using 1:3 with linespoints dashtype 2 title "tcp:4 pause p99", \
     $d0 using 1:4 axes x1y2 with linespoints dashtype 3 title "tcp:4 primary CPU mean", \
     $d1 using 1:2 with linespoints title "ucx:4 pause mean", \
     $d1 using 1:3 with linespoints dashtype 2 title "ucx:4 pause p99", \
     $d1 using 1:4 axes x1y2 with linespoints dashtype 3 title "ucx:4 primary CPU mean"
