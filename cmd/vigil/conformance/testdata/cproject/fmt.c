#include <stdio.h>

#include "calc.h"

void print_result(long sum, long product)
{
	printf("sum=%ld product=%ld\n", sum, product);
}
