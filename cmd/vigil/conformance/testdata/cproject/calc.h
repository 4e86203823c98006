#ifndef CALC_H
#define CALC_H
long add(long a, long b);
long mul(long a, long b);
void print_result(long sum, long product);
#endif
