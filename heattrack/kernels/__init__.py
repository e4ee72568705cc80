"""Pure kernels: numpy arrays in, numpy arrays out. No file or network IO and no Dask calls here;
every function runs on a 64 x 64 array in milliseconds and is unit-tested that way."""
