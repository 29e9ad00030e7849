#!/usr/bin/env cwl-runner
cwlVersion: v1.0
class: CommandLineTool

requirements:
  DockerRequirement:
    dockerPull: docker.io/library/debian:12-slim

baseCommand: bash

inputs:
  gendata_tool:
    type: File
    inputBinding:
      position: 1
  events:
    type: int
    inputBinding:
      position: 2
  outfilename:
    type: string
    default: data.txt
    inputBinding:
      position: 3

outputs:
  data:
    type: File
    outputBinding:
      glob: $(inputs.outfilename)
