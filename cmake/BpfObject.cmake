# Builds BPF C sources with clang, links them into one object with
# `bpftool gen object` and generates one skeleton header with
# `bpftool gen skeleton`. Header dependencies come from clang depfiles.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(KEYSCOPE_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/vmlinux/x86)

function(keyscope_bpf_skeleton target)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES" ${ARGN})
  set(objs)
  foreach(src ${ARG_SOURCES})
    get_filename_component(stem ${src} NAME_WE)
    set(obj ${CMAKE_CURRENT_BINARY_DIR}/bpf/${stem}.bpf.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bpf
      COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86
              -Wall -Wextra -Werror -Wno-unused-parameter
              -I${KEYSCOPE_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf
              -MD -MF ${obj}.d
              -c ${CMAKE_SOURCE_DIR}/${src} -o ${obj}
      DEPENDS ${CMAKE_SOURCE_DIR}/${src}
      DEPFILE ${obj}.d
      COMMENT "BPF ${src}"
      VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  set(linked ${CMAKE_CURRENT_BINARY_DIR}/bpf/${ARG_NAME}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/bpf/${ARG_NAME}.skel.h)
  add_custom_command(
    OUTPUT ${linked} ${skel}
    COMMAND ${BPFTOOL} gen object ${linked} ${objs}
    COMMAND ${BPFTOOL} gen skeleton ${linked} name ${ARG_NAME} > ${skel}
    DEPENDS ${objs}
    COMMENT "BPF skeleton ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${CMAKE_CURRENT_BINARY_DIR}/bpf)
endfunction()
