int svfio_types_dummy;
