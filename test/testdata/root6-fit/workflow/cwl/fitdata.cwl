#!/usr/bin/env cwl-runner
cwlVersion: v1.0
class: CommandLineTool

requirements:
  DockerRequirement:
    dockerPull: docker.io/library/debian:12-slim

baseCommand: bash

inputs:
  fitdata_tool:
    type: File
    inputBinding:
      position: 1
  data:
    type: File
    inputBinding:
      position: 2
  outfile:
    type: string
    default: plot.png
    inputBinding:
      position: 3

outputs:
  plot:
    type: File
    outputBinding:
      glob: $(inputs.outfile)
