// libhdf5 exposes its predefined types and property-list classes as macros that expand to
// function calls, which Swift cannot import; these inline functions give them to Swift.
#ifndef MOECKPT_CHDF5_SHIM_H
#define MOECKPT_CHDF5_SHIM_H

#if __has_include(<hdf5.h>)
#include <hdf5.h>
#else
#error "libhdf5 headers not found: install Debian's libhdf5-dev (scripts/setup.sh does)"
#endif

static inline hid_t moeckpt_h5t_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t moeckpt_h5t_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t moeckpt_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t moeckpt_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t moeckpt_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t moeckpt_h5t_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t moeckpt_h5t_std_u32le(void) { return H5T_STD_U32LE; }
static inline hid_t moeckpt_h5t_std_u64le(void) { return H5T_STD_U64LE; }
static inline hid_t moeckpt_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t moeckpt_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t moeckpt_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t moeckpt_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t moeckpt_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t moeckpt_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t moeckpt_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t moeckpt_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned moeckpt_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned moeckpt_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline size_t moeckpt_h5t_variable(void) { return H5T_VARIABLE; }
static inline haddr_t moeckpt_haddr_undef(void) { return HADDR_UNDEF; }

#endif
