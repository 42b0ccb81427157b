# BPF programs built the way BPF user-space programs normally are: clang-19
# compiles *.bpf.c against a vmlinux.h generated at build time from kernel BTF,
# and `bpftool gen skeleton` turns each object into a skeleton header in the
# build tree. Nothing generated is committed.
#
#   scxkit_add_bpf(arena_ops SOURCE src/bpf/progs/arena_ops.bpf.c)
#
# creates the INTERFACE target `arena_ops_skel`: link it to include
# "arena_ops.skel.h". VMLINUX picks a BTF source declared with
# scxkit_add_vmlinux() (default: `host`, the running kernel's BTF).

find_program(SCXKIT_BPF_CLANG NAMES clang-19 REQUIRED
             DOC "clang able to target BPF (Debian: clang-19)")
find_program(SCXKIT_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED
             DOC "bpftool 7.x (Debian: bpftool from bookworm-backports)")
set(SCXKIT_HOST_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "Kernel BTF the host BPF programs are built against")
if(NOT EXISTS ${SCXKIT_HOST_BTF})
  message(FATAL_ERROR "No kernel BTF at ${SCXKIT_HOST_BTF}: BPF programs need a kernel built with "
                      "CONFIG_DEBUG_INFO_BTF=y, or point -DSCXKIT_HOST_BTF=<file> at one.")
endif()

set(SCXKIT_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
# The multiarch include dir holds asm/types.h, which the BPF target lacks.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE SCXKIT_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
# -fms-extensions accepts the anonymous struct members newer kernels' vmlinux.h
# has (7.x); -Wno-microsoft-anon-tag keeps it from warning about each one.
set(SCXKIT_BPF_CFLAGS -O2 -g -target bpf -mcpu=v3 -Wall -Wno-unused-function
    -fms-extensions -Wno-microsoft-anon-tag -I/usr/include/${SCXKIT_MULTIARCH})
# bpftool 7.5 writes skeletons for libbpf 1.5, which wires struct_ops maps to
# links (`map->link`); libbpf 1.4's bpf_map_skeleton has no such member, so
# drop that line there (loaders attach struct_ops maps themselves).
set(SCXKIT_SKEL_FIXUP ${CMAKE_COMMAND} -E true)
if(LIBBPF_VERSION VERSION_LESS 1.5)
  set(SCXKIT_SKEL_FIXUP sed -i "/map->link = /d")
endif()

# scxkit_add_vmlinux(<id> <btf-file> [DEPENDS ...]): vmlinux.h for BTF source <id>.
function(scxkit_add_vmlinux id btf)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  set(dir ${SCXKIT_BPF_OUT}/vmlinux-${id})
  add_custom_command(
    OUTPUT ${dir}/vmlinux.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${SCXKIT_BPFTOOL} btf dump file ${btf} format c > ${dir}/vmlinux.h.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${dir}/vmlinux.h.tmp ${dir}/vmlinux.h
    DEPENDS ${ARG_DEPENDS}
    COMMENT "Generating vmlinux.h from ${btf}"
    VERBATIM)
  add_custom_target(vmlinux_${id} DEPENDS ${dir}/vmlinux.h)
  set_property(GLOBAL PROPERTY SCXKIT_VMLINUX_DIR_${id} ${dir})
endfunction()

scxkit_add_vmlinux(host ${SCXKIT_HOST_BTF})

# scxkit_add_bpf(<name> SOURCE <file.bpf.c> [VMLINUX <id>] [INCLUDES dirs...])
function(scxkit_add_bpf name)
  cmake_parse_arguments(ARG "" "SOURCE;VMLINUX" "INCLUDES" ${ARGN})
  if(NOT ARG_VMLINUX)
    set(ARG_VMLINUX host)
  endif()
  get_property(vmlinux_dir GLOBAL PROPERTY SCXKIT_VMLINUX_DIR_${ARG_VMLINUX})
  if(NOT vmlinux_dir)
    message(FATAL_ERROR "scxkit_add_bpf(${name}): no vmlinux source '${ARG_VMLINUX}'")
  endif()
  get_filename_component(src ${ARG_SOURCE} ABSOLUTE)
  set(obj ${SCXKIT_BPF_OUT}/${name}.bpf.o)
  set(skel ${SCXKIT_BPF_OUT}/${name}.skel.h)
  set(includes -I${vmlinux_dir} -I${PROJECT_SOURCE_DIR}/include)
  foreach(dir ${ARG_INCLUDES})
    list(APPEND includes -I${dir})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${SCXKIT_BPF_CLANG} ${SCXKIT_BPF_CFLAGS} ${includes} -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src} vmlinux_${ARG_VMLINUX} ${vmlinux_dir}/vmlinux.h
    DEPFILE ${obj}.d
    COMMENT "Compiling BPF program ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${SCXKIT_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${SCXKIT_SKEL_FIXUP} ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Generating skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  target_include_directories(${name}_skel INTERFACE ${SCXKIT_BPF_OUT})
  add_dependencies(${name}_skel ${name}_skel_gen)
  set_property(TARGET ${name}_skel PROPERTY SCXKIT_BPF_OBJECT ${obj})
endfunction()
